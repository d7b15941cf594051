//! SQLite's own page cache, without the scan of the whole cache that ended
//! most of the writer's commits.
//!
//! At the end of every write transaction SQLite drops the cached pages past
//! the database's end (`xTruncate`). Its page cache scans only the few hash
//! slots past that end, unless a key above it was ever used: then it scans
//! every slot. B-tree balancing gives a page a temporary number, the one of
//! the lock page (`PENDING_BYTE / page size + 1`, far past the end of any
//! database under 1 GiB), while it reorders siblings, and the cache raises
//! its highest key to it. Under a steady stream of inserts nearly every
//! commit balances a page that way, so nearly every commit walked the whole
//! cache of the writer's connection (32 MiB): a third of that connection's
//! CPU a note added (docs/performance.md).
//!
//! This wraps the default page cache and keeps, per cache, a bound on the
//! keys it holds ([`Keys`]), not counting pages while they hold that
//! temporary number. A truncation with nothing at or past its limit is then
//! not passed on. Everything else is the default cache's own code.
//! `incidentd` installs it first thing (`main`), for every connection of the
//! process; where it is not installed (a library user, the unit tests),
//! SQLite keeps its own cache unchanged.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

use libsqlite3_sys as ffi;

/// The default page cache's methods, which the wrapper calls.
struct Builtin(ffi::sqlite3_pcache_methods2);

// SAFETY: the methods are plain function pointers and an argument SQLite
// gives them back; SQLite calls them from any thread.
unsafe impl Send for Builtin {}
unsafe impl Sync for Builtin {}

static BUILTIN: OnceLock<Builtin> = OnceLock::new();

/// Where SQLite's lock page starts (`PENDING_BYTE`); only its test interface
/// moves it.
const PENDING_BYTE: c_uint = 0x4000_0000;

/// One pager's cache: the default one, and what it may hold. SQLite calls a
/// cache's methods one at a time, under the mutex of the connection (or of
/// the shared cache) that owns it, so the fields need no lock.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    keys: Keys,
}

/// What keys a cache may hold, as far as it was told: enough to know when a
/// truncation has nothing to drop.
#[derive(Clone, Debug)]
struct Keys {
    /// No page has a key above this, apart from those at `parking`.
    bound: c_uint,
    /// The temporary key B-tree balancing gives a page.
    parking: c_uint,
    /// Pages now at `parking`.
    parked: usize,
}

impl Keys {
    fn new(page_size: c_int) -> Keys {
        Keys {
            bound: 0,
            parking: PENDING_BYTE / page_size.max(1) as c_uint + 1,
            parked: 0,
        }
    }

    /// A page was fetched with `key`, maybe created. Counted even at the
    /// parking key: it is then a page of its own.
    fn fetched(&mut self, key: c_uint) {
        self.bound = self.bound.max(key);
    }

    /// A page's key changed from `old` to `new`.
    fn rekeyed(&mut self, old: c_uint, new: c_uint) {
        if old == self.parking && self.parked > 0 {
            self.parked -= 1;
        }
        if new == self.parking {
            self.parked += 1;
        } else {
            self.bound = self.bound.max(new);
        }
    }

    /// Whether a truncation at `limit` (dropping every key from it up) may
    /// drop a page. If so, it is passed on, and the keys are as it leaves
    /// them.
    fn truncate(&mut self, limit: c_uint) -> bool {
        if self.parked == 0 && self.bound < limit {
            return false;
        }
        self.bound = self.bound.min(limit.saturating_sub(1));
        if limit <= self.parking {
            self.parked = 0;
        }
        true
    }
}

/// What `incidentd` logs (WARN) when [`install`] could not install the
/// wrapper; tests look for it.
pub const NOT_INSTALLED: &str = "SQLite keeps its own page cache, which every commit scans whole";

/// Installs the wrapper for every SQLite connection the process opens from
/// now on. It must run before SQLite is first used (SQLite refuses a new page
/// cache afterwards, and then keeps its own): returns whether it was
/// installed.
pub fn install() -> bool {
    let mut builtin = ffi::sqlite3_pcache_methods2 {
        iVersion: 0,
        pArg: std::ptr::null_mut(),
        xInit: None,
        xShutdown: None,
        xCreate: None,
        xCachesize: None,
        xPagecount: None,
        xFetch: None,
        xUnpin: None,
        xRekey: None,
        xTruncate: None,
        xDestroy: None,
        xShrink: None,
    };
    // SAFETY: `sqlite3_config` must not run beside any other SQLite call;
    // callers run this first thing in the process. SQLite copies the struct.
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_GETPCACHE2,
            &mut builtin as *mut ffi::sqlite3_pcache_methods2,
        )
    };
    let complete = [
        builtin.xInit.is_some(),
        builtin.xShutdown.is_some(),
        builtin.xCreate.is_some(),
        builtin.xCachesize.is_some(),
        builtin.xPagecount.is_some(),
        builtin.xFetch.is_some(),
        builtin.xUnpin.is_some(),
        builtin.xRekey.is_some(),
        builtin.xTruncate.is_some(),
        builtin.xDestroy.is_some(),
        builtin.xShrink.is_some(),
    ];
    if rc != ffi::SQLITE_OK || builtin.iVersion < 1 || complete.contains(&false) {
        return false;
    }
    let pass_through = builtin.pArg;
    if BUILTIN.set(Builtin(builtin)).is_err() {
        return false;
    }
    let wrapper = ffi::sqlite3_pcache_methods2 {
        iVersion: 1,
        pArg: pass_through,
        xInit: Some(init),
        xShutdown: Some(shutdown),
        xCreate: Some(create),
        xCachesize: Some(cachesize),
        xPagecount: Some(pagecount),
        xFetch: Some(fetch),
        xUnpin: Some(unpin),
        xRekey: Some(rekey),
        xTruncate: Some(truncate),
        xDestroy: Some(destroy),
        xShrink: Some(shrink),
    };
    // SAFETY: as above; SQLite copies the struct.
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PCACHE2,
            &wrapper as *const ffi::sqlite3_pcache_methods2,
        )
    };
    rc == ffi::SQLITE_OK
}

/// One of SQLite's own methods. SQLite calls the wrapper only once `install`
/// has kept them, every one present.
macro_rules! builtin {
    ($method:ident) => {
        BUILTIN
            .get()
            .and_then(|b| b.0.$method)
            .expect("the wrapper is installed over a complete page cache")
    };
}

/// # Safety
/// `p` is a cache [`create`] returned and [`destroy`] has not freed.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    unsafe { &mut *(p as *mut Cache) }
}

unsafe extern "C" fn init(arg: *mut c_void) -> c_int {
    unsafe { builtin!(xInit)(arg) }
}

unsafe extern "C" fn shutdown(arg: *mut c_void) {
    unsafe { builtin!(xShutdown)(arg) }
}

unsafe extern "C" fn create(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let inner = unsafe { builtin!(xCreate)(page_size, extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    Box::into_raw(Box::new(Cache {
        inner,
        keys: Keys::new(page_size),
    })) as *mut ffi::sqlite3_pcache
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, pages: c_int) {
    unsafe { builtin!(xCachesize)(cache(p).inner, pages) }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    unsafe { builtin!(xPagecount)(cache(p).inner) }
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let c = unsafe { cache(p) };
    let page = unsafe { builtin!(xFetch)(c.inner, key, create) };
    if create != 0 && !page.is_null() {
        c.keys.fetched(key);
    }
    page
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    unsafe { builtin!(xUnpin)(cache(p).inner, page, discard) }
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    let c = unsafe { cache(p) };
    unsafe { builtin!(xRekey)(c.inner, page, old, new) }
    c.keys.rekeyed(old, new);
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let c = unsafe { cache(p) };
    // Nothing at or past `limit`: nothing to drop, and no scan.
    if c.keys.truncate(limit) {
        unsafe { builtin!(xTruncate)(c.inner, limit) }
    }
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: `p` came from `create`'s Box and SQLite destroys it once.
    let c = unsafe { Box::from_raw(p as *mut Cache) };
    unsafe { builtin!(xDestroy)(c.inner) }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    unsafe { builtin!(xShrink)(cache(p).inner) }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// What SQLite does to a cache's keys.
    #[derive(Clone, Debug)]
    enum Op {
        /// Fetches (creates) a page.
        Fetch(c_uint),
        /// Moves the `n`th page held (if any) to a key.
        Rekey(usize, c_uint),
        /// Moves the `n`th page held to the parking key and back to where
        /// it was or to another, as balancing does.
        Park(usize, Option<c_uint>),
        /// Drops the `n`th page held (unpinned and discarded, or recycled).
        Drop(usize),
        Truncate(c_uint),
    }

    const PAGE: c_int = 4096;

    fn op() -> impl Strategy<Value = Op> {
        let key = 1..300 as c_uint;
        prop_oneof![
            4 => key.clone().prop_map(Op::Fetch),
            1 => (any::<usize>(), key.clone()).prop_map(|(n, k)| Op::Rekey(n, k)),
            2 => (any::<usize>(), proptest::option::of(key.clone())).prop_map(|(n, k)| Op::Park(n, k)),
            1 => any::<usize>().prop_map(Op::Drop),
            2 => key.prop_map(Op::Truncate),
        ]
    }

    /// Pages held, by key (a count: two may share the parking key).
    type Held = BTreeMap<c_uint, usize>;

    fn nth(held: &Held, n: usize) -> Option<c_uint> {
        let total: usize = held.values().sum();
        if total == 0 {
            return None;
        }
        let mut n = n % total;
        for (k, count) in held {
            if n < *count {
                return Some(*k);
            }
            n -= count;
        }
        None
    }

    fn take(held: &mut Held, key: c_uint) {
        if let Some(c) = held.get_mut(&key) {
            *c -= 1;
            if *c == 0 {
                held.remove(&key);
            }
        }
    }

    fn rekey(keys: &mut Keys, held: &mut Held, old: c_uint, new: c_uint) {
        take(held, old);
        // SQLite drops a page already at `new` before it moves another there
        // (`sqlite3PcacheMove`), the parking key included; the model keeps
        // several pages parked at once, more than SQLite can, which the
        // bookkeeping must survive all the same.
        if new != keys.parking {
            held.remove(&new);
        }
        *held.entry(new).or_default() += 1;
        keys.rekeyed(old, new);
    }

    proptest! {
        /// A truncation is skipped only when the cache holds nothing it
        /// would drop: skipping one that would drop a page leaves a page
        /// past the database's end, which SQLite would later read as data.
        #[test]
        fn a_truncation_is_skipped_only_when_it_would_drop_nothing(
            ops in proptest::collection::vec(op(), 0..200)
        ) {
            let mut keys = Keys::new(PAGE);
            let mut held = Held::new();
            for op in ops {
                match op {
                    Op::Fetch(k) => {
                        *held.entry(k).or_default() = 1;
                        keys.fetched(k);
                    }
                    Op::Rekey(n, new) => {
                        if let Some(old) = nth(&held, n) {
                            rekey(&mut keys, &mut held, old, new);
                        }
                    }
                    Op::Park(n, back) => {
                        if let Some(old) = nth(&held, n) {
                            let parking = keys.parking;
                            rekey(&mut keys, &mut held, old, parking);
                            if let Some(new) = back {
                                rekey(&mut keys, &mut held, parking, new);
                            }
                        }
                    }
                    Op::Drop(n) => {
                        if let Some(k) = nth(&held, n) {
                            take(&mut held, k);
                        }
                    }
                    Op::Truncate(limit) => {
                        let drops = held.range(limit..).next().is_some();
                        let passed = keys.truncate(limit);
                        prop_assert!(passed || !drops, "skipped a truncation at {limit} of {held:?}");
                        if passed {
                            held.retain(|k, _| *k < limit);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_commit_after_balancing_does_not_scan_the_cache() {
        let mut keys = Keys::new(PAGE);
        for k in 1..=100 {
            keys.fetched(k);
        }
        // Balancing swaps two pages through the parking key.
        let parking = keys.parking;
        keys.rekeyed(40, parking);
        keys.rekeyed(41, 40);
        keys.rekeyed(parking, 41);
        assert!(!keys.truncate(101), "nothing lies past the end");
        // A rollback that shrinks the database drops what lies past it.
        assert!(keys.truncate(90));
        assert!(!keys.truncate(90));
        assert_eq!(keys.parking, 262_145);
    }
}
