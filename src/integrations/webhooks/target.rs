//! Where a webhook may be sent: the defence against server-side request forgery.
//!
//! An endpoint's URL must be `https` (plain `http` only when the configuration allows it), with
//! a host and no user name, password or fragment. Every address its host resolves to is
//! classified, and one address Docket must not reach refuses the whole host: loopback,
//! private (RFC 1918, `fc00::/7`), link-local (`169.254.0.0/16` with the cloud metadata
//! service, `fe80::/10`), unspecified, multicast, broadcast, shared (CGNAT `100.64.0.0/10`),
//! documentation and other special-purpose ranges, and the IPv6 forms that embed an IPv4
//! address (mapped, compatible, NAT64, 6to4), judged by the address they embed. Addresses in a
//! CIDR range the configuration lists are allowed whatever their class.
//!
//! The check runs when an endpoint is registered and again at every delivery: the sender's
//! HTTP client resolves names only through [`GuardedResolver`], so a connection is only ever
//! made to an address that passed, however the name's records change in between.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A range of addresses, e.g. `127.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix` (a bare address is a range of one).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= width)?,
            None => width,
        };
        Some(Cidr { network, prefix })
    }

    /// Whether `address` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                prefix_matches(&network.octets(), &address.octets(), self.prefix)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                prefix_matches(&network.octets(), &address.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn prefix_matches(network: &[u8], address: &[u8], prefix: u8) -> bool {
    let whole = usize::from(prefix / 8);
    let rest = prefix % 8;
    if network[..whole] != address[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (network[whole] & mask) == (address[whole] & mask)
}

/// Where webhooks may go beyond the public internet over HTTPS. Everything else is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Accept `http://` URLs (for a receiver in a test or on a trusted network).
    pub allow_http: bool,
    /// Ranges allowed whatever their class (e.g. `127.0.0.1/32` for a local test receiver).
    pub allowed: Vec<Cidr>,
}

/// Why an address or URL is refused; the text is safe to show to an administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    #[error("the URL is not a valid absolute URL")]
    Malformed,
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("only https URLs are accepted")]
    NotHttps,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("the URL must not carry a fragment")]
    Fragment,
    #[error("the URL's host does not resolve")]
    Unresolved,
    #[error("the URL's host resolves to a {class} address, which webhooks may not reach")]
    Address { class: &'static str },
}

impl TargetRefused {
    /// A short stable code for delivery logs.
    pub fn code(&self) -> &'static str {
        match self {
            TargetRefused::Malformed | TargetRefused::TooLong => "malformed_url",
            TargetRefused::NotHttps => "not_https",
            TargetRefused::Credentials => "credentials_in_url",
            TargetRefused::Fragment => "fragment_in_url",
            TargetRefused::Unresolved => "unresolved",
            TargetRefused::Address { .. } => "refused_address",
        }
    }
}

/// The special-purpose class of an address, or `None` for an ordinary public one.
pub fn special_class(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    let class = if address.is_unspecified() || a == 0 {
        "unspecified"
    } else if address.is_loopback() {
        "loopback"
    } else if address.is_private() {
        "private"
    } else if address.is_link_local() {
        "link-local"
    } else if address.is_broadcast() {
        "broadcast"
    } else if address.is_multicast() {
        "multicast"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (CGNAT)"
    } else if matches!((a, b, c), (192, 0, 2) | (198, 51, 100) | (203, 0, 113)) {
        "documentation"
    } else if a == 198 && (b == 18 || b == 19) {
        "benchmarking"
    } else if (a, b, c) == (192, 0, 0) {
        "protocol assignment"
    } else if (a, b, c) == (192, 88, 99) {
        "6to4 relay"
    } else if a >= 240 {
        "reserved"
    } else {
        return None;
    };
    Some(class)
}

fn v6_class(address: Ipv6Addr) -> Option<&'static str> {
    if address.is_unspecified() {
        return Some("unspecified");
    }
    if address.is_loopback() {
        return Some("loopback");
    }
    let segments = address.segments();
    let octets = address.octets();
    let embedded =
        |at: usize| Ipv4Addr::new(octets[at], octets[at + 1], octets[at + 2], octets[at + 3]);
    // Forms that carry an IPv4 address are judged by it (a public one is still refused when
    // the form itself is deprecated or tunnelled).
    if let Some(v4) = address.to_ipv4_mapped() {
        return v4_class(v4);
    }
    if segments[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d), deprecated since RFC 4291.
        return Some(v4_class(embedded(12)).unwrap_or("deprecated IPv4-compatible"));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix: reaches the embedded IPv4 address.
        return v4_class(embedded(12));
    }
    if segments[0] == 0x2002 {
        // 6to4: reaches the embedded IPv4 address.
        return v4_class(embedded(2));
    }
    let class = match segments[0] {
        0x0064 if segments[1] == 0xff9b && segments[2] == 0x0001 => "local-use NAT64",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard-only",
        0x2001 if segments[1] == 0 => "Teredo tunnel",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        0x2001 if segments[1] == 0x0002 && segments[2] == 0 => "benchmarking",
        0x2001 if (0x0010..0x0030).contains(&segments[1]) => "ORCHID",
        0x3fff if segments[1] < 0x1000 => "documentation",
        first if first & 0xfe00 == 0xfc00 => "private (unique local)",
        first if first & 0xffc0 == 0xfe80 => "link-local",
        first if first & 0xffc0 == 0xfec0 => "site-local",
        first if first & 0xff00 == 0xff00 => "multicast",
        first if first & 0xe000 != 0x2000 => "reserved",
        _ => return None,
    };
    Some(class)
}

impl EgressPolicy {
    /// Whether a connection may go to `address`.
    pub fn check_address(&self, address: IpAddr) -> Result<(), TargetRefused> {
        if self.allowed.iter().any(|range| range.contains(address)) {
            return Ok(());
        }
        match special_class(address) {
            None => Ok(()),
            Some(class) => Err(TargetRefused::Address { class }),
        }
    }

    /// Checks a URL's form (scheme, credentials, fragment, length), returning it parsed.
    pub fn check_url(&self, text: &str) -> Result<Url, TargetRefused> {
        if text.len() > MAX_URL_LEN {
            return Err(TargetRefused::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(|_| TargetRefused::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(TargetRefused::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetRefused::Credentials);
        }
        if url.fragment().is_some() {
            return Err(TargetRefused::Fragment);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(TargetRefused::Malformed);
        }
        Ok(url)
    }

    /// Checks a URL and every address its host resolves to now.
    pub async fn check_target(&self, text: &str) -> Result<Url, TargetRefused> {
        let url = self.check_url(text)?;
        let host = url.host_str().ok_or(TargetRefused::Malformed)?;
        match literal_address(host) {
            Some(address) => self.check_address(address)?,
            None => {
                self.resolve(host).await?;
            }
        }
        Ok(url)
    }

    /// Resolves `host` and checks every address; refused when any address is.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, TargetRefused> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| TargetRefused::Unresolved)?
            .collect();
        if found.is_empty() {
            return Err(TargetRefused::Unresolved);
        }
        for address in &found {
            self.check_address(address.ip())?;
        }
        Ok(found)
    }
}

/// The address of a URL host that is an IP literal (`[::1]` or `10.0.0.1`).
pub fn literal_address(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The name resolver of the sender's HTTP client: resolves as the system does, then refuses
/// the name unless every address passes the policy.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = policy.resolve(&host).await?;
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
