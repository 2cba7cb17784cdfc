use super::*;

fn policy(allow: &[&str]) -> Policy {
    Policy::new(&OutboundAllow::parse(allow).unwrap())
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

/// Every spelling of this host the URL parser reads as an address.
const LOOPBACK_SPELLINGS: [&str; 9] = [
    "http://127.0.0.1:9/x?access_token=tok",
    "http://2130706433:9/x",
    "http://0x7f.1:9/x",
    "http://0x7f000001/x",
    "http://0177.0.0.1/x",
    "http://127.1/x",
    "http://127.0.0.1./x",
    "http://[::ffff:127.0.0.1]/x",
    "http://[::ffff:7f00:1]/x",
];

#[test]
fn addresses_in_any_spelling_are_refused_by_name_of_the_range() {
    let strict = Policy::default();
    for text in LOOPBACK_SPELLINGS {
        let e = strict.check_url(&url(text)).unwrap_err();
        let line = e.to_string();
        assert!(
            line.contains("is a loopback address")
                && line.ends_with("; add it to security.outbound_allow to allow it")
                && !line.contains("tok"),
            "{text}: {line}"
        );
    }
    for (text, word) in [
        ("http://0.0.0.0/", "host 0.0.0.0 is an unspecified"),
        ("http://0/", "host 0.0.0.0 is an unspecified"),
        ("http://[::]/", "host [::] is an unspecified"),
        ("http://[::1]:8080/", "host [::1] is a loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fd00::1]/", "unique-local"),
        ("http://10.1.2.3/", "private"),
        ("http://[64:ff9b::7f00:1]/", "NAT64"),
    ] {
        let e = strict.check_url(&url(text)).unwrap_err().to_string();
        assert!(e.contains(word), "{text}: {e}");
    }
    // Names are left to the resolver; public addresses pass.
    for text in [
        "http://localhost/",
        "https://oapi.dingtalk.com/robot/send",
        "http://8.8.8.8/",
    ] {
        assert_eq!(strict.check_url(&url(text)), Ok(()), "{text}");
    }
}

#[test]
fn the_allow_list_lets_listed_addresses_networks_and_names_through() {
    let p = policy(&["127.0.0.1", "10.0.0.0/8", "hooks.corp"]);
    for text in LOOPBACK_SPELLINGS {
        assert_eq!(p.check_url(&url(text)), Ok(()), "{text}");
    }
    assert_eq!(p.check_url(&url("http://10.9.8.7/")), Ok(()));
    assert!(p.check_url(&url("http://127.0.0.2/")).is_err());
    assert!(p.check_url(&url("http://[::1]/")).is_err());
    let at = |ip: &str| vec![SocketAddr::new(ip.parse().unwrap(), 0)];
    // A listed name: every address it resolves to.
    assert_eq!(p.check_resolved("hooks.corp", &at("192.168.1.1")), Ok(()));
    assert_eq!(p.check_resolved("HOOKS.corp.", &at("192.168.1.1")), Ok(()));
    // Another name: each address on its own.
    assert_eq!(p.check_resolved("x.example", &at("10.1.1.1")), Ok(()));
    let mut mixed = at("93.184.216.34");
    mixed.extend(at("192.168.1.1"));
    let e = p
        .check_resolved("x.example", &mixed)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "host x.example resolves to a private address; \
         add it to security.outbound_allow to allow it"
    );
    assert_eq!(
        Policy::default().check_resolved("x.example", &at("93.184.216.34")),
        Ok(())
    );
}

/// A listener on 127.0.0.1 that counts the connections it accepts.
async fn listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let mut request = [0u8; 4096];
            let _ = sock.read(&mut request).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_when_connecting() {
    let (port, seen) = listener().await;
    let strict = Client::build(reqwest::Client::builder(), Some(Arc::default())).unwrap();
    let target = url(&format!("http://localhost:{port}/x"));
    let e = strict.post(&target).unwrap().send().await.unwrap_err();
    let refused = Refused::find(&e).expect("the refusal in the chain");
    assert_eq!(refused.host, "localhost");
    assert!(refused.why.contains("a loopback address"), "{refused}");
    let literal = url(&format!("http://127.1:{port}/x"));
    assert!(strict.post(&literal).is_err());
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Listed by name, or trusted: the same requests arrive.
    let allowed = Client::build(
        reqwest::Client::builder(),
        Some(Arc::new(policy(&["localhost"]))),
    )
    .unwrap();
    let answer = allowed.post(&target).unwrap().send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let trusted = Client::build(reqwest::Client::builder(), None).unwrap();
    trusted.post(&literal).unwrap().send().await.unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
}
