//! Rules for the server address that station and server both apply.

/// Whether a server address names this machine (plain HTTP is allowed there only).
pub fn is_loopback_url(url: &str) -> bool {
    // Parsed as the HTTP client will read it, so that "http://localhost:80@elsewhere/" (a
    // user name and password before the real host) cannot pass for this machine.
    let Ok(u) = url::Url::parse(url.trim()) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() {
        return false;
    }
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn only_this_machine_is_loopback_however_the_url_is_written() {
        for (url, loopback) in [
            ("http://localhost:8443/", true),
            ("http://LOCALHOST/", true),
            ("http://127.0.0.1:1/api", true),
            ("http://127.3.4.5/", true),
            ("http://[::1]:8080/", true),
            ("http://localhost:80@evil.example/", false),
            ("http://127.0.0.1@evil.example/", false),
            ("http://user:pass@localhost/", false),
            ("http://evil.example/?h=localhost", false),
            ("http://localhost.evil.example/", false),
            ("http://10.0.0.1/", false),
            ("http://[::ffff:8.8.8.8]/", false),
            ("localhost", false),
            ("", false),
        ] {
            assert_eq!(is_loopback_url(url), loopback, "{url}");
        }
    }
}
