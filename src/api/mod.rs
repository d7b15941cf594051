//! The gRPC edge: decode and validate proto requests, call the use cases,
//! encode the answers. Proto types stop here.

pub mod action_items;
pub mod components;
pub mod convert;
pub mod incidents;
pub mod parse;
pub(crate) mod refs;
pub mod timeline;

use serde::{Serialize, de::DeserializeOwned};

use crate::auth::{Identity, Role};
use crate::domain::Audience;
use crate::domain::limits::{FILTER_LIST_MAX, PAGE_MAX_BYTES};
use crate::error::{Error, Result};
use crate::page_token;
use crate::proto as pb;
use crate::store::Store;

/// The audience a read is answered for: the request's `view`, within what
/// the caller's role allows. A token of the public role reads VIEW_PUBLIC
/// whatever it asks for, and asking for VIEW_FULL is refused; in open mode
/// (no tokens file) every caller may ask for either.
pub(crate) fn audience<T>(request: &tonic::Request<T>, view: i32) -> Result<Audience> {
    let public_role = request
        .extensions()
        .get::<Identity>()
        .is_some_and(|i| i.role == Role::Public);
    match (pb::View::try_from(view), public_role) {
        (Err(_), _) => Err(Error::invalid("view", format!("unknown enum value {view}"))),
        (Ok(pb::View::Public), _) | (Ok(pb::View::Unspecified), true) => Ok(Audience::Public),
        (Ok(pb::View::Full), true) => Err(Error::PermissionDenied(
            "a token of the public role reads VIEW_PUBLIC only".into(),
        )),
        (Ok(pb::View::Full | pb::View::Unspecified), false) => Ok(Audience::Full),
    }
}

/// The entries of a list filter to look at: all of them, or, past the cap, a
/// violation and none (a huge filter costs nothing more than its decoding).
pub(crate) fn filter_list<'a, T>(v: &mut parse::Violations, field: &str, list: &'a [T]) -> &'a [T] {
    if list.len() > FILTER_LIST_MAX {
        v.add(
            field,
            format!(
                "at most {FILTER_LIST_MAX} entries (got {}); split the request",
                list.len()
            ),
        );
        return &[];
    }
    list
}

/// Reads the position of a page token, if one is given, checking it belongs to
/// this list and these filters.
pub(crate) fn page_start<C: DeserializeOwned>(
    store: &Store,
    scope: &str,
    filters: &impl Serialize,
    token: &str,
) -> Result<Option<C>> {
    if token.is_empty() {
        return Ok(None);
    }
    page_token::decode(store.page_token_key(), scope, filters, token).map(Some)
}

/// Items read for one page: `limit + 1` were asked for.
pub(crate) struct Run<'a, D> {
    pub items: &'a [D],
    /// The read stopped before the end on its own (more items follow its last
    /// even if it has no `limit + 1`th).
    pub cut_short: bool,
}

impl<'a, D> Run<'a, D> {
    /// Everything the read was asked for, or all there was.
    pub fn whole(items: &'a [D]) -> Self {
        Run {
            items,
            cut_short: false,
        }
    }
}

/// Cuts a fetched run into one page of at most `limit` items and 4 MiB, and
/// issues the token of the next page.
pub(crate) fn paginate<D, P: prost::Message, C: Serialize>(
    store: &Store,
    scope: &str,
    filters: &impl Serialize,
    run: Run<'_, D>,
    limit: usize,
    convert: impl Fn(&D) -> P,
    cursor: impl Fn(&D) -> C,
) -> Result<(Vec<P>, String)> {
    let mut out = Vec::with_capacity(run.items.len().min(limit));
    let mut bytes = 0usize;
    let mut last: Option<&D> = None;
    let mut more = run.cut_short;
    for item in run.items {
        if out.len() == limit {
            more = true;
            break;
        }
        let p = convert(item);
        bytes += p.encoded_len();
        if bytes > PAGE_MAX_BYTES && !out.is_empty() {
            more = true;
            break;
        }
        out.push(p);
        last = Some(item);
    }
    let token = match (more, last) {
        (true, Some(last)) => {
            page_token::encode(store.page_token_key(), scope, filters, &cursor(last))?
        }
        _ => String::new(),
    };
    Ok((out, token))
}
