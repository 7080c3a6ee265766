//! Where a URL fetch may go: the address policy, the resolver it checks
//! names with, and the classification of addresses.
//!
//! A bot that fetches a URL a chat user typed must not become a way into
//! the host's own network: by default a fetch refuses loopback, private,
//! link-local, CGNAT, multicast, unspecified and reserved addresses, and the
//! cloud metadata endpoints, and it checks every redirect hop after
//! resolving its name, before any connection is made. An `https://` page
//! that redirects to `http://` is refused too.
//!
//! Architecture invariant: the check runs on the addresses the configured
//! [`Resolve`] returns. The HTTP service then connects by name and resolves
//! it again; a name whose answer changes between the two lookups (DNS
//! rebinding) is only covered when that service resolves through the same
//! resolver, as a caller-supplied transport can.

use std::fmt;
#[cfg(feature = "transport")]
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
#[cfg(feature = "transport")]
use std::pin::Pin;
#[cfg(feature = "transport")]
use std::sync::Arc;

#[cfg(feature = "transport")]
/// A boxed future that resolves a name.
pub type ResolveFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

#[cfg(feature = "transport")]
/// Resolves host names for the fetch's address check.
///
/// The default is the system resolver; tests map names to addresses of
/// their choosing without any lookup.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (a name, never an IP literal) for `port`.
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture;
}

#[cfg(feature = "transport")]
/// The system resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[cfg(feature = "transport")]
impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        let target = format!("{host}:{port}");
        Box::pin(async move {
            let addrs = tokio::net::lookup_host(target).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

#[cfg(feature = "transport")]
impl<F> Resolve for F
where
    F: Fn(&str, u16) -> std::io::Result<Vec<IpAddr>> + Send + Sync + 'static,
{
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        let answer = self(host, port);
        Box::pin(async move { answer })
    }
}

#[cfg(feature = "transport")]
/// A shared resolver, as the fetch options hold it.
#[derive(Clone)]
pub struct Resolver(pub(crate) Arc<dyn Resolve>);

#[cfg(feature = "transport")]
impl Resolver {
    /// Wraps any [`Resolve`] implementation (a closure from host and port
    /// to addresses is one).
    pub fn new(resolver: impl Resolve) -> Self {
        Self(Arc::new(resolver))
    }
}

#[cfg(feature = "transport")]
impl Default for Resolver {
    fn default() -> Self {
        Self::new(SystemResolver)
    }
}

#[cfg(feature = "transport")]
impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver(..)")
    }
}

/// Which destinations a URL fetch may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AddressPolicy {
    /// Only publicly routable unicast addresses (the default).
    #[default]
    PublicOnly,
    /// Public addresses and this machine's loopback interface
    /// (`127.0.0.0/8`, `::1`), for a local test server.
    AllowLoopback,
    /// Any address: private networks and metadata endpoints included.
    AllowAll,
}

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT, `100.64/10`.
    Cgnat,
    /// `224/4`, `ff00::/8`, and broadcast.
    Multicast,
    /// A cloud provider's instance metadata service
    /// (`169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`).
    Metadata,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// Reserved, documentation and benchmarking ranges.
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Cgnat => "carrier-grade nat",
            Self::Multicast => "multicast or broadcast",
            Self::Metadata => "cloud metadata",
            Self::Unspecified => "unspecified",
            Self::Reserved => "reserved",
        })
    }
}

/// The class of a non-public address, `None` for a public one.
pub fn classify(addr: IpAddr) -> Option<AddressClass> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    let class =
        if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
            AddressClass::Metadata
        } else if a == 0 {
            AddressClass::Unspecified
        } else if a == 127 {
            AddressClass::Loopback
        } else if a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168) {
            AddressClass::Private
        } else if a == 169 && b == 254 {
            AddressClass::LinkLocal
        } else if a == 100 && (64..=127).contains(&b) {
            AddressClass::Cgnat
        } else if (224..=239).contains(&a) || ip.is_broadcast() {
            AddressClass::Multicast
        } else if a >= 240
            || (a == 192 && b == 0 && (c == 0 || c == 2))
            || (a == 198 && (b == 18 || b == 19))
            || (a == 198 && b == 51 && c == 100)
            || (a == 203 && b == 0 && c == 113)
        {
            AddressClass::Reserved
        } else {
            return None;
        };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let seg = ip.segments();
    // IPv4 carried inside IPv6 is judged by the IPv4 address: mapped
    // (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and
    // 6to4 (2002:AABB:CCDD::/48).
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if seg[..5] == [0, 0, 0, 0, 0] && seg[5] == 0xffff {
        return classify_v4(embedded(seg[6], seg[7]));
    }
    if seg[..2] == [0x64, 0xff9b] && seg[2..6] == [0, 0, 0, 0] {
        return classify_v4(embedded(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return classify_v4(embedded(seg[1], seg[2]));
    }
    let class = if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        AddressClass::Metadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return classify_v4(embedded(seg[6], seg[7]));
    } else if seg[0] & 0xfe00 == 0xfc00 || seg[0] & 0xffc0 == 0xfec0 {
        AddressClass::Private
    } else if seg[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if seg[0] & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else if seg[..2] == [0x2001, 0xdb8] || seg[0] & 0xe000 != 0x2000 {
        // Documentation, and everything outside global unicast 2000::/3.
        AddressClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

impl AddressPolicy {
    /// Whether `addr` may be fetched; the class that forbids it otherwise.
    pub fn check(self, addr: IpAddr) -> Result<(), AddressClass> {
        match (self, classify(addr)) {
            (_, None) | (Self::AllowAll, _) => Ok(()),
            (Self::AllowLoopback, Some(AddressClass::Loopback)) => Ok(()),
            (_, Some(class)) => Err(class),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_classified() {
        use AddressClass::*;
        for (addr, want) in [
            ("127.0.0.1", Loopback),
            ("127.255.1.2", Loopback),
            ("::1", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fd12:3456::1", Private),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("100.64.0.1", Cgnat),
            ("100.127.255.254", Cgnat),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Multicast),
            ("ff02::1", Multicast),
            ("169.254.169.254", Metadata),
            ("fd00:ec2::254", Metadata),
            ("100.100.100.200", Metadata),
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("240.0.0.1", Reserved),
            ("2001:db8::1", Reserved),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("2002:0a00:0001::1", Private),
        ] {
            assert_eq!(class(addr), Some(want), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(addr), None, "{addr}");
            assert!(
                AddressPolicy::PublicOnly
                    .check(addr.parse().unwrap())
                    .is_ok()
            );
        }
    }

    #[test]
    fn policies_open_up_in_steps() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            AddressPolicy::PublicOnly.check(lo),
            Err(AddressClass::Loopback)
        );
        assert!(AddressPolicy::AllowLoopback.check(lo).is_ok());
        assert_eq!(
            AddressPolicy::AllowLoopback.check(private),
            Err(AddressClass::Private)
        );
        assert!(AddressPolicy::AllowAll.check(private).is_ok());
    }
}
