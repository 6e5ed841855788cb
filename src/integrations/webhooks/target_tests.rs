use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn refused(text: &str) -> Option<&'static str> {
    special_class(ip(text))
}

#[test]
fn ordinary_public_addresses_pass() {
    for public in [
        "1.1.1.1",
        "8.8.8.8",
        "93.184.216.34",
        "100.63.255.255",
        "100.128.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.167.1.1",
        "198.17.255.255",
        "198.20.0.1",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "2001:4860:4860::8888",
    ] {
        assert_eq!(refused(public), None, "{public}");
    }
}

#[test]
fn every_ipv4_special_range_is_refused() {
    let cases = [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("169.254.0.1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.255", "shared (CGNAT)"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("192.0.0.8", "protocol assignment"),
        ("192.88.99.1", "6to4 relay"),
        ("240.0.0.1", "reserved"),
        ("250.1.2.3", "reserved"),
    ];
    for (address, class) in cases {
        assert_eq!(refused(address), Some(class), "{address}");
    }
}

#[test]
fn every_ipv6_special_range_is_refused() {
    let cases = [
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private (unique local)"),
        ("fd12:3456:789a::1", "private (unique local)"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("2001::1", "Teredo tunnel"),
        ("2001:2::1", "benchmarking"),
        ("2001:10::1", "ORCHID"),
        ("2001:20::1", "ORCHID"),
        ("100::1", "discard-only"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("4000::1", "reserved"),
        ("1::1", "reserved"),
    ];
    for (address, class) in cases {
        assert_eq!(refused(address), Some(class), "{address}");
    }
}

#[test]
fn ipv6_forms_embedding_ipv4_are_judged_by_the_embedded_address() {
    // Mapped.
    assert_eq!(refused("::ffff:127.0.0.1"), Some("loopback"));
    assert_eq!(refused("::ffff:169.254.169.254"), Some("link-local"));
    assert_eq!(refused("::ffff:10.1.2.3"), Some("private"));
    assert_eq!(refused("::ffff:7f00:1"), Some("loopback"));
    assert_eq!(refused("::ffff:8.8.8.8"), None);
    // Compatible (deprecated: refused even when public).
    assert_eq!(refused("::127.0.0.1"), Some("loopback"));
    assert_eq!(refused("::8.8.8.8"), Some("deprecated IPv4-compatible"));
    // NAT64 and 6to4.
    assert_eq!(refused("64:ff9b::10.0.0.1"), Some("private"));
    assert_eq!(refused("64:ff9b::a9fe:a9fe"), Some("link-local"));
    assert_eq!(refused("64:ff9b::8.8.8.8"), None);
    assert_eq!(refused("2002:7f00:1::1"), Some("loopback"));
    assert_eq!(refused("2002:c0a8:101::1"), Some("private"));
    assert_eq!(refused("2002:808:808::1"), None);
}

#[test]
fn cidr_ranges_parse_and_contain() {
    let range = Cidr::parse("127.0.0.0/8").unwrap();
    assert!(range.contains(ip("127.0.0.1")));
    assert!(range.contains(ip("127.255.0.9")));
    assert!(
        range.contains(ip("::ffff:127.0.0.1")),
        "mapped counts as IPv4"
    );
    assert!(!range.contains(ip("128.0.0.1")));
    assert!(!range.contains(ip("::1")));
    let odd = Cidr::parse("100.64.0.0/10").unwrap();
    assert!(odd.contains(ip("100.127.1.1")));
    assert!(!odd.contains(ip("100.128.0.0")));
    let single = Cidr::parse("10.1.2.3").unwrap();
    assert!(single.contains(ip("10.1.2.3")));
    assert!(!single.contains(ip("10.1.2.4")));
    assert_eq!(single.to_string(), "10.1.2.3/32");
    let v6 = Cidr::parse("fd00::/8").unwrap();
    assert!(v6.contains(ip("fd12::1")));
    assert!(!v6.contains(ip("fc00::1")));
    assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    for bad in [
        "",
        "10.0.0.0/33",
        "::/129",
        "ten/8",
        "10.0.0.0/x",
        "10.0.0/8",
    ] {
        assert_eq!(Cidr::parse(bad), None, "{bad}");
    }
}

#[test]
fn listed_ranges_are_allowed_and_nothing_else() {
    let closed = EgressPolicy::default();
    assert_eq!(
        closed.check_address(ip("127.0.0.1")),
        Err(TargetRefused::Address { class: "loopback" })
    );
    assert!(closed.check_address(ip("8.8.8.8")).is_ok());
    let open = EgressPolicy {
        allow_http: false,
        allowed: vec![Cidr::parse("127.0.0.1/32").unwrap()],
    };
    assert!(open.check_address(ip("127.0.0.1")).is_ok());
    assert!(open.check_address(ip("::ffff:127.0.0.1")).is_ok());
    assert!(open.check_address(ip("127.0.0.2")).is_err());
    assert!(open.check_address(ip("169.254.169.254")).is_err());
}

#[test]
fn urls_must_be_https_without_credentials_or_fragments() {
    let policy = EgressPolicy::default();
    assert!(policy.check_url("https://hooks.example.com/docket").is_ok());
    assert_eq!(
        policy.check_url("http://hooks.example.com/docket"),
        Err(TargetRefused::NotHttps)
    );
    for other in [
        "ftp://x.example/",
        "file:///etc/passwd",
        "gopher://x.example/",
    ] {
        assert_eq!(
            policy.check_url(other),
            Err(TargetRefused::NotHttps),
            "{other}"
        );
    }
    assert_eq!(
        policy.check_url("https://user:pw@hooks.example.com/"),
        Err(TargetRefused::Credentials)
    );
    assert_eq!(
        policy.check_url("https://user@hooks.example.com/"),
        Err(TargetRefused::Credentials)
    );
    assert_eq!(
        policy.check_url("https://hooks.example.com/#x"),
        Err(TargetRefused::Fragment)
    );
    assert_eq!(policy.check_url("not a url"), Err(TargetRefused::Malformed));
    assert_eq!(
        policy.check_url(&format!("https://x.example/{}", "a".repeat(MAX_URL_LEN))),
        Err(TargetRefused::TooLong)
    );
    let http = EgressPolicy {
        allow_http: true,
        allowed: Vec::new(),
    };
    assert!(http.check_url("http://hooks.example.com/").is_ok());
    assert_eq!(
        http.check_url("ftp://x.example/"),
        Err(TargetRefused::NotHttps)
    );
}

#[tokio::test]
async fn literal_and_resolved_hosts_are_checked() {
    let policy = EgressPolicy::default();
    for url in [
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1:8443/",
        "https://0x7f.1/",
        "https://2130706433/",
        "https://localhost/",
    ] {
        assert!(
            matches!(
                policy.check_target(url).await,
                Err(TargetRefused::Address { .. })
            ),
            "{url}"
        );
    }
    assert_eq!(
        policy
            .check_target("https://8.8.8.8/")
            .await
            .map(|u| u.to_string()),
        Ok("https://8.8.8.8/".to_owned())
    );
    assert_eq!(
        policy.check_target("https://no-such-host.invalid/").await,
        Err(TargetRefused::Unresolved)
    );
    let local = EgressPolicy {
        allow_http: true,
        allowed: vec![
            Cidr::parse("127.0.0.0/8").unwrap(),
            Cidr::parse("::1").unwrap(),
        ],
    };
    assert!(local.check_target("http://127.0.0.1:9/").await.is_ok());
    assert!(local.check_target("http://localhost:9/").await.is_ok());
}

#[test]
fn literal_hosts_are_recognised_with_or_without_brackets() {
    assert_eq!(literal_address("[::1]"), Some(ip("::1")));
    assert_eq!(literal_address("10.0.0.1"), Some(ip("10.0.0.1")));
    assert_eq!(literal_address("hooks.example.com"), None);
}
