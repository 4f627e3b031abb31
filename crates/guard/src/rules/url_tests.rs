use super::*;

fn rule(allow: &[&str], deny_private: bool) -> UrlRule {
    UrlRule {
        allow_hosts: allow.iter().map(|s| (*s).to_owned()).collect(),
        deny_private,
    }
}

/// (url, expected: Ok(()) or the violation's public text)
fn run(rule: &UrlRule, rows: &[(&str, Result<(), &str>)]) {
    for (url, want) in rows {
        let got = rule.check(url).map(|_| ()).map_err(|e| e.to_string());
        match want {
            Ok(()) => assert!(got.is_ok(), "{url}: expected allowed, got {got:?}"),
            Err(text) => {
                let err = got.expect_err(&format!("{url}: expected refusal"));
                assert!(err.contains(text), "{url}: got {err:?}, expected …{text}…");
            }
        }
    }
}

#[test]
fn deny_private_literal_addresses() {
    let r = rule(&[], true);
    run(
        &r,
        &[
            ("https://example.com/x", Ok(())),
            ("http://93.184.216.34/", Ok(())),
            ("http://[2606:4700::1111]/", Ok(())),
            ("http://8.8.8.8:8080/x?y", Ok(())),
            // loopback, every spelling
            ("http://127.0.0.1/", Err("loopback")),
            ("http://127.1/", Err("loopback")),
            ("http://127.000.000.001/", Err("loopback")),
            ("http://2130706433/", Err("loopback")),
            ("http://0x7f000001/", Err("loopback")),
            ("http://0x7f.1/", Err("loopback")),
            ("http://0177.0.0.1/", Err("loopback")),
            ("http://017700000001/", Err("loopback")),
            ("http://0x7F.0x0.0x0.0x1/", Err("loopback")),
            ("http://127.0.0.1.:80/", Err("loopback")),
            ("http://[::1]/", Err("loopback")),
            ("http://[0:0:0:0:0:0:0:1]/", Err("loopback")),
            ("http://[::ffff:127.0.0.1]/", Err("loopback")),
            ("http://[::ffff:7f00:1]/", Err("loopback")),
            ("http://[::127.0.0.1]/", Err("loopback")),
            ("http://[64:ff9b::127.0.0.1]/", Err("loopback")),
            ("http://[64:ff9b::7f00:1]/", Err("loopback")),
            ("http://[2002:7f00:1::]/", Err("loopback")),
            ("http://localhost/", Err("local machine")),
            ("http://LOCALHOST./", Err("local machine")),
            ("http://app.localhost/", Err("local machine")),
            // unspecified
            ("http://0.0.0.0/", Err("unspecified")),
            ("http://0/", Err("unspecified")),
            ("http://[::]/", Err("unspecified")),
            // private
            ("http://10.0.0.1/", Err("private")),
            ("http://167772161/", Err("private")),
            ("http://172.16.0.1/", Err("private")),
            ("http://172.31.255.255/", Err("private")),
            ("http://192.168.1.1/", Err("private")),
            ("http://0xc0.0xa8.1.1/", Err("private")),
            ("http://[fc00::1]/", Err("private")),
            ("http://[fd12:3456::1]/", Err("private")),
            ("http://[::ffff:10.0.0.1]/", Err("private")),
            ("http://[::ffff:192.168.0.1]/", Err("private")),
            ("http://[64:ff9b:1::a00:1]/", Err("private")),
            // link-local, CGNAT, multicast, broadcast, reserved, documentation
            ("http://169.254.1.1/", Err("link-local")),
            ("http://[fe80::1]/", Err("link-local")),
            ("http://100.64.0.1/", Err("carrier-grade NAT")),
            ("http://100.127.255.254/", Err("carrier-grade NAT")),
            ("http://224.0.0.1/", Err("multicast")),
            ("http://[ff02::1]/", Err("multicast")),
            ("http://255.255.255.255/", Err("broadcast")),
            ("http://240.0.0.1/", Err("reserved")),
            ("http://198.18.0.1/", Err("reserved")),
            ("http://192.0.2.1/", Err("documentation")),
            ("http://[2001:db8::1]/", Err("documentation")),
            (
                "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
                Err("tunnel"),
            ),
            // cloud metadata
            ("http://169.254.169.254/latest/meta-data/", Err("metadata")),
            ("http://2852039166/", Err("metadata")),
            ("http://0xa9fea9fe/", Err("metadata")),
            ("http://0251.0376.0251.0376/", Err("metadata")),
            ("http://[::ffff:169.254.169.254]/", Err("metadata")),
            ("http://[::ffff:a9fe:a9fe]/", Err("metadata")),
            ("http://[fd00:ec2::254]/", Err("metadata")),
            ("http://168.63.129.16/", Err("metadata")),
            ("http://100.100.100.200/", Err("metadata")),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                Err("metadata"),
            ),
            ("http://instance-data/latest/", Err("metadata")),
        ],
    );
}

#[test]
fn scheme_userinfo_and_ambiguous_text() {
    let r = rule(&[], true);
    run(
        &r,
        &[
            ("file:///etc/passwd", Err("scheme \"file\"")),
            ("gopher://127.0.0.1:6379/_x", Err("scheme \"gopher\"")),
            ("ftp://example.com/", Err("scheme \"ftp\"")),
            ("dict://example.com:11211/", Err("scheme")),
            ("javascript:alert(1)", Err("scheme")),
            ("data:text/plain,hi", Err("scheme")),
            ("http://good.example.com@evil.com/", Err("credentials")),
            ("http://user:pass@example.com/", Err("credentials")),
            ("http://@example.com/", Err("credentials")),
            ("http://example.com\\@127.0.0.1/", Err("disagree")),
            ("http://127.0.0.1\\.example.com/", Err("disagree")),
            ("http://exa mple.com/", Err("disagree")),
            ("http://example.com/\u{0}", Err("disagree")),
            (" http://127.0.0.1/", Err("disagree")),
            ("http://example.com\t/", Err("disagree")),
            ("not a url", Err("disagree")),
            ("example.com/path", Err("not a valid URL")),
            ("//example.com/path", Err("not a valid URL")),
            ("http://", Err("not a valid URL")),
            ("http://[::1/", Err("not a valid URL")),
            ("http://256.256.256.256/", Err("not a valid URL")),
        ],
    );
}

#[test]
fn allow_hosts_patterns() {
    let r = rule(
        &["*.example.com", "api.partner.org", "93.184.216.34"],
        false,
    );
    run(
        &r,
        &[
            ("https://a.example.com/", Ok(())),
            ("https://a.b.example.com/x", Ok(())),
            ("https://A.EXAMPLE.COM./", Ok(())),
            ("https://api.partner.org:8443/v1", Ok(())),
            ("http://93.184.216.34/", Ok(())),
            ("http://[::ffff:93.184.216.34]/", Ok(())),
            ("https://example.com/", Err("not allowed")),
            ("https://evilexample.com/", Err("not allowed")),
            ("https://example.com.evil.net/", Err("not allowed")),
            ("https://a.example.com.evil.net/", Err("not allowed")),
            ("https://partner.org/", Err("not allowed")),
            ("https://x.api.partner.org/", Err("not allowed")),
            ("https://a.example.com@evil.net/", Err("credentials")),
            ("https://evil.net/?u=a.example.com", Err("not allowed")),
            ("https://evil.net/#a.example.com", Err("not allowed")),
            ("http://1572395042/", Ok(())), // 93.184.216.34 spelled as one number
        ],
    );
    // Allowing a host does not make a private address acceptable when deny_private is set.
    let both = rule(&["*.internal.example", "10.0.0.5"], true);
    run(
        &both,
        &[
            ("http://db.internal.example/", Ok(())),
            ("http://10.0.0.5/", Err("private")),
        ],
    );
    let any = rule(&["*"], false);
    run(&any, &[("http://127.0.0.1/", Ok(()))]);
}

#[test]
fn returns_the_host_to_resolve() {
    let r = rule(&[], true);
    assert_eq!(
        r.check("https://Example.COM./x"),
        Ok((CheckedHost::Name("example.com".into()), 443))
    );
    assert_eq!(
        r.check("http://93.184.216.34:8080/"),
        Ok((CheckedHost::Ip("93.184.216.34".parse().unwrap()), 8080))
    );
}
