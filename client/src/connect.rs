//! Connecting to one of several replicas.

use std::fmt;

use tonic::transport::{Channel, Endpoint};

/// No endpoint of a list could be connected to.
#[derive(Debug)]
pub struct ConnectError {
    /// Each endpoint tried, in order, with why it failed.
    pub tried: Vec<(String, String)>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tried.is_empty() {
            return write!(f, "no endpoint given");
        }
        write!(f, "could not connect to any endpoint:")?;
        for (endpoint, why) in &self.tried {
            write!(f, " {endpoint} ({why});")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {}

/// Connects to the first of `endpoints` (URLs, one per replica) that accepts
/// a connection, trying them in order.
pub async fn connect_any<I, S>(endpoints: I) -> Result<Channel, ConnectError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut tried = Vec::new();
    for url in endpoints {
        let url = url.as_ref();
        let attempt = match Endpoint::from_shared(url.to_owned()) {
            Ok(e) => e.connect().await.map_err(|e| error_chain(&e)),
            Err(e) => Err(error_chain(&e)),
        };
        match attempt {
            Ok(channel) => return Ok(channel),
            Err(why) => tried.push((url.to_owned(), why)),
        }
    }
    Err(ConnectError { tried })
}

/// One channel per endpoint, each connecting when first used (and again
/// after it breaks): what [`crate::Subscription::over`] takes.
pub fn lazy_channels<I, S>(endpoints: I) -> Result<Vec<Channel>, ConnectError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut channels = Vec::new();
    for url in endpoints {
        let url = url.as_ref();
        match Endpoint::from_shared(url.to_owned()) {
            Ok(e) => channels.push(e.connect_lazy()),
            Err(e) => {
                return Err(ConnectError {
                    tried: vec![(url.to_owned(), error_chain(&e))],
                });
            }
        }
    }
    if channels.is_empty() {
        return Err(ConnectError { tried: Vec::new() });
    }
    Ok(channels)
}

/// An error with its sources: tonic's transport errors say little on their own.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
