//! Process limits: `wxlink sim` raises its open-file limit so that it can
//! hold thousands of long polls. Nothing here needs `unsafe`: the limit
//! goes through `rustix`'s safe `getrlimit`/`setrlimit`.

/// Raises this process's open-file limit to its hard maximum, so that
/// thousands of concurrent connections do not fail with EMFILE. Returns the
/// limit in force afterwards (`u64::MAX` when unlimited).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` is "unlimited".
    let unlimited = |v: Option<u64>| v.unwrap_or(u64::MAX);
    let mut current = limit.current;
    if unlimited(limit.current) < unlimited(limit.maximum) {
        let wanted = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, wanted).is_ok() {
            current = limit.maximum;
        }
    }
    Some(unlimited(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_at_least_what_it_was() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let after = raise_open_file_limit().unwrap();
        assert!(after >= before.current.unwrap_or(u64::MAX), "{after}");
    }
}
