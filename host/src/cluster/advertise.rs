//! The REST address a worker announces to its peers: they use it for status and `/getAllTask`,
//! so it must be one they can reach from another host, never a wildcard or (when the worker
//! listens on every interface) its own loopback.

use std::net::{IpAddr, SocketAddr};

/// The address to announce and why it was chosen (logged at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// `host:port`.
    pub address: String,
    /// Which rule chose it, for the operator.
    pub reason: &'static str,
}

/// Chooses the announced address: `httpAdvertisedAddress` when set (its port, or the bound
/// one); else the bound address when it is a specific one; else, for a wildcard bind, the
/// machine's own non-loopback address (`local`), falling back to loopback only when the
/// machine has no other.
pub fn rest_address(
    configured: Option<&str>,
    bound: SocketAddr,
    local: impl FnOnce() -> Option<IpAddr>,
) -> Advertised {
    if let Some(configured) = configured {
        let has_port = configured
            .rsplit_once(':')
            .is_some_and(|(h, _)| !h.contains(':') || h.starts_with('['));
        let address = if has_port {
            configured.to_string()
        } else if configured.contains(':') {
            format!("[{configured}]:{}", bound.port())
        } else {
            format!("{configured}:{}", bound.port())
        };
        return Advertised {
            address,
            reason: "httpAdvertisedAddress",
        };
    }
    if !bound.ip().is_unspecified() {
        return Advertised {
            address: bound.to_string(),
            reason: "the bind address (httpBind)",
        };
    }
    match local().filter(|ip| !ip.is_loopback() && !ip.is_unspecified()) {
        Some(ip) => Advertised {
            address: SocketAddr::new(ip, bound.port()).to_string(),
            reason: "this machine's address (httpBind is a wildcard; set httpAdvertisedAddress to choose)",
        },
        None => Advertised {
            address: SocketAddr::new(IpAddr::from([127, 0, 0, 1]), bound.port()).to_string(),
            reason: "loopback: this machine has no other address (peers on other hosts cannot reach it; set httpAdvertisedAddress)",
        },
    }
}

/// This machine's address on its default route, else its first non-loopback interface address.
pub fn machine_address() -> Option<IpAddr> {
    local_ip_address::local_ip().ok().or_else(|| {
        local_ip_address::list_afinet_netifas()
            .ok()?
            .into_iter()
            .map(|(_, ip)| ip)
            .find(|ip| !ip.is_loopback())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn configured_address_wins_and_takes_the_bound_port_when_it_has_none() {
        let at = bound("0.0.0.0:8082");
        assert_eq!(
            rest_address(Some("w1.lan"), at, || None).address,
            "w1.lan:8082"
        );
        assert_eq!(
            rest_address(Some("w1.lan:9000"), at, || None).address,
            "w1.lan:9000"
        );
        assert_eq!(
            rest_address(Some("fd00::1"), at, || None).address,
            "[fd00::1]:8082"
        );
        assert_eq!(
            rest_address(Some("[fd00::1]:9"), at, || None).address,
            "[fd00::1]:9"
        );
    }

    #[test]
    fn a_specific_bind_is_announced_as_it_is() {
        let a = rest_address(None, bound("127.0.0.3:4000"), || None);
        assert_eq!(a.address, "127.0.0.3:4000");
    }

    #[test]
    fn a_wildcard_bind_announces_the_machine_address_never_loopback_when_there_is_another() {
        let a = rest_address(None, bound("0.0.0.0:8082"), || Some([10, 1, 2, 3].into()));
        assert_eq!(a.address, "10.1.2.3:8082");
        let a = rest_address(None, bound("[::]:8082"), || Some([127, 0, 0, 1].into()));
        assert_eq!(a.address, "127.0.0.1:8082");
        assert!(a.reason.contains("loopback"));
    }
}
