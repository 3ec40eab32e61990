//! Where local tools may write what is published: the sample key.
//!
//! The sample events carry a key that anyone can read in this repository.
//! `create-table --sample-key` stores it only on an endpoint given
//! explicitly (`AWS_ENDPOINT_URL_DYNAMODB`) whose host is loopback or an
//! address of this machine (DynamoDB Local, reached directly or over this
//! machine's Docker bridge), never on AWS's default endpoint.

use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Why an endpoint is refused for the sample key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointRefused {
    #[error(
        "no endpoint given: --sample-key stores a published key, so it needs AWS_ENDPOINT_URL_DYNAMODB \
         set to DynamoDB Local (loopback or this machine's Docker bridge), never AWS's endpoint"
    )]
    Missing,
    #[error("endpoint {0:?} is not an http(s) URL with a host")]
    Malformed(String),
    #[error(
        "endpoint host {0:?} is neither loopback nor an address of this machine: \
         --sample-key stores a published key, only on DynamoDB Local"
    )]
    NotLocal(String),
}

/// The host of an `http://` or `https://` URL (brackets of IPv6 removed).
fn host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// Whether `ip` is one of this machine's own addresses: binding a socket to
/// it succeeds only then (nothing is sent).
fn is_own_address(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Accepts `endpoint` for the sample key, or says why not.
pub fn sample_key_endpoint(endpoint: Option<&str>) -> Result<(), EndpointRefused> {
    let url = endpoint
        .filter(|e| !e.trim().is_empty())
        .ok_or(EndpointRefused::Missing)?;
    let host = host(url).ok_or_else(|| EndpointRefused::Malformed(url.to_owned()))?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(());
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Ok(()),
        Ok(ip) if !ip.is_unspecified() && is_own_address(ip) => Ok(()),
        _ => Err(EndpointRefused::NotLocal(host.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_own_addresses_are_accepted() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            "http://127.0.0.2:9",
            "http://[::1]:8000/",
        ] {
            assert_eq!(sample_key_endpoint(Some(ok)), Ok(()), "{ok}");
        }
    }

    #[test]
    fn aws_a_missing_endpoint_and_foreign_hosts_are_refused() {
        assert_eq!(sample_key_endpoint(None), Err(EndpointRefused::Missing));
        assert_eq!(
            sample_key_endpoint(Some(" ")),
            Err(EndpointRefused::Missing)
        );
        for refused in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://203.0.113.7:8000",
            "http://0.0.0.0:8000",
            "http://localhost.example.com:8000",
            "http://127.0.0.1.example.com",
        ] {
            assert!(
                matches!(
                    sample_key_endpoint(Some(refused)),
                    Err(EndpointRefused::NotLocal(_))
                ),
                "{refused}"
            );
        }
        assert!(matches!(
            sample_key_endpoint(Some("dynamodb:8000")),
            Err(EndpointRefused::Malformed(_))
        ));
    }
}
