//! E-mail through a real SMTP server: `tests/stand_ins/smtp.py` (Python aiosmtpd) on
//! localhost in plain, STARTTLS and implicit-TLS modes, with a CA and a `localhost`
//! certificate made by rcgen for each test. Received messages are parsed back with
//! mail-parser and the attached workbook with calamine.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use calamine::{Data, Reader, Xlsx};
use mail_parser::{MessageParser, MimeHeaders};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use reportd::config::{EmailSettings, Security};
use reportd::model::secret::Secret;
use reportd::notify::email::{EmailError, Mail, Mailer};

const XLSX_TYPE: &str = "vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const REPORT_NAME: &str = "订单日报_20240101.xlsx";
const SUBJECT: &str = "每日订单报表 2024-01-01";
const SENDER: &str = "reports@example.com";
const SENDER_NAME: &str = "报表机器人";
const PASSWORD: &str = "s3cret-Pa55word";

/// A CA and a server certificate for `localhost` signed by it, as PEM files.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "reportd test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf_cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        Pki { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// One message as the stand-in received it.
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: Vec<u8>,
}

/// The aiosmtpd stand-in, stopped on drop (its stdin closes, and it is killed).
pub struct SmtpServer {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    out: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start(mode: &str, pki: &Pki, login: Option<(&str, &str)>) -> SmtpServer {
        let out = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stand_ins/smtp.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg(mode)
            .arg(out.path())
            .arg("--cert")
            .arg(pki.dir.path().join("cert.pem"))
            .arg("--key")
            .arg(pki.dir.path().join("key.pem"));
        if let Some((user, password)) = login {
            cmd.args(["--user", user, "--password", password]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/test.sh installs aiosmtpd)");
        let stdin = child.stdin.take().unwrap();
        let port = crate::stand_in::read_port(&mut child, "smtp.py (is aiosmtpd installed?)");
        SmtpServer {
            child,
            _stdin: stdin,
            port,
            out,
        }
    }

    /// Messages received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut all = Vec::new();
        for n in 1.. {
            let meta = self.out.path().join(format!("{n}.json"));
            let Ok(meta) = std::fs::read(&meta) else {
                break;
            };
            let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
            all.push(Received {
                mail_from: meta["mail_from"].as_str().unwrap().to_owned(),
                rcpt_tos: meta["rcpt_tos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect(),
                raw: std::fs::read(self.out.path().join(format!("{n}.eml"))).unwrap(),
            });
        }
        all
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(port: u16, security: Security, ca: Option<PathBuf>) -> EmailSettings {
    EmailSettings {
        smtp_server: Some("localhost".into()),
        smtp_port: Some(port),
        from_name: Some(SENDER_NAME.into()),
        from_address: Some(SENDER.into()),
        security: Some(security),
        smtp_timeout: 10,
        retry_attempts: 3,
        retry_delay: 1,
        ca_file: ca,
        ..EmailSettings::default()
    }
}

fn with_login(mut s: EmailSettings, user: &str, password: &str) -> EmailSettings {
    s.username = Some(user.into());
    s.password = Secret::new(password);
    s
}

/// The rows of the test workbook.
fn report_rows() -> Vec<Vec<String>> {
    vec![
        vec!["订单号".into(), "客户".into(), "金额".into()],
        vec!["A-001".into(), "张三".into(), "12.5".into()],
        vec!["A-002".into(), "李四".into(), "7".into()],
    ]
}

/// Writes the test workbook under its Chinese name into `dir`.
fn write_report(dir: &Path) -> PathBuf {
    let path = dir.join(REPORT_NAME);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("订单").unwrap();
    for (r, row) in report_rows().iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            sheet.write(r as u32, c as u16, value.as_str()).unwrap();
        }
    }
    workbook.save(&path).unwrap();
    path
}

fn report_mail(attachment: PathBuf) -> Mail {
    Mail {
        to: vec![
            "张三 <zhangsan@example.com>".into(),
            "ops@example.com".into(),
        ],
        cc: vec!["boss@example.com".into()],
        bcc: vec!["audit@example.com".into()],
        subject: SUBJECT.into(),
        html: "<h1>订单日报</h1><p>共 2 行</p>".into(),
        text: "订单日报\n共 2 行".into(),
        attachments: vec![attachment],
    }
}

/// Everything the report mail must look like once received.
fn assert_report_received(got: &Received) {
    assert_eq!(got.mail_from, SENDER);
    let mut rcpts = got.rcpt_tos.clone();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "audit@example.com",
            "boss@example.com",
            "ops@example.com",
            "zhangsan@example.com"
        ]
    );

    let raw = String::from_utf8_lossy(&got.raw);
    assert!(!raw.contains("audit@example.com"), "Bcc leaked:\n{raw}");
    assert!(
        raw.contains("filename*=UTF-8''%E8%AE%A2%E5%8D%95%E6%97%A5%E6%8A%A5_20240101.xlsx"),
        "no RFC 2231 file name:\n{raw}"
    );
    assert!(
        raw.contains("name=\"=?UTF-8?B?"),
        "no RFC 2047 name:\n{raw}"
    );

    let msg = MessageParser::default().parse(&got.raw).expect("a message");
    let from = msg.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some(SENDER_NAME));
    assert_eq!(from.address(), Some(SENDER));
    let to: Vec<_> = msg
        .to()
        .unwrap()
        .iter()
        .map(|a| (a.name().map(str::to_owned), a.address().unwrap().to_owned()))
        .collect();
    assert_eq!(
        to,
        [
            (Some("张三".to_owned()), "zhangsan@example.com".to_owned()),
            (None, "ops@example.com".to_owned())
        ]
    );
    let cc = msg.cc().unwrap().first().unwrap();
    assert_eq!(cc.address(), Some("boss@example.com"));
    assert!(msg.bcc().is_none());
    assert_eq!(msg.subject(), Some(SUBJECT));
    assert!(
        msg.body_html(0).unwrap().contains("<h1>订单日报</h1>"),
        "{:?}",
        msg.body_html(0)
    );
    assert_eq!(
        msg.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
        "订单日报\n共 2 行"
    );

    let attachments: Vec<_> = msg.attachments().collect();
    assert_eq!(attachments.len(), 1);
    let part = attachments[0];
    assert_eq!(part.attachment_name(), Some(REPORT_NAME));
    let ctype = part.content_type().unwrap();
    assert_eq!(ctype.ctype(), "application");
    assert_eq!(ctype.subtype(), Some(XLSX_TYPE));
    assert_eq!(ctype.attribute("name"), Some(REPORT_NAME));

    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(part.contents().to_vec())).unwrap();
    let range = workbook.worksheet_range("订单").unwrap();
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(rows, report_rows());
}

#[tokio::test]
async fn email_starttls_with_login_delivers_the_report() {
    let pki = Pki::new();
    let server = SmtpServer::start("starttls", &pki, Some(("robot", PASSWORD)));
    let files = tempfile::tempdir().unwrap();
    let mail = report_mail(write_report(files.path()));

    let s = with_login(
        settings(server.port, Security::Starttls, Some(pki.ca())),
        "robot",
        PASSWORD,
    );
    let mailer = Mailer::new(&s).unwrap();
    let sent = mailer.send(&mail).await;
    assert_eq!(sent.result, Ok("250 OK queued".to_owned()));
    assert_eq!(sent.attempts, 1);

    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_report_received(&received[0]);
}

#[tokio::test]
async fn email_implicit_tls_sends_twice_through_one_mailer() {
    let pki = Pki::new();
    let server = SmtpServer::start("tls", &pki, Some(("robot@example.com", PASSWORD)));
    let files = tempfile::tempdir().unwrap();
    let mail = report_mail(write_report(files.path()));

    // No from_address: the sender is the login.
    let mut s = with_login(
        settings(server.port, Security::Tls, Some(pki.ca())),
        "robot@example.com",
        PASSWORD,
    );
    s.from_address = None;
    let mailer = Mailer::new(&s).unwrap();
    // The second file name needs several RFC 2047 words, folded inside the quotes.
    let long_name = "2024年第一季度华东大区各门店订单明细与退款汇总报表_按日期排序.xlsx";
    let long = files.path().join(long_name);
    std::fs::copy(&mail.attachments[0], &long).unwrap();
    let second = Mail {
        attachments: vec![long],
        ..mail.clone()
    };
    for m in [&mail, &second] {
        let sent = mailer.send(m).await;
        assert_eq!(sent.result, Ok("250 OK queued".to_owned()));
        assert_eq!(sent.attempts, 1);
    }
    let received = server.received();
    assert_eq!(received.len(), 2);
    for (got, name) in received.iter().zip([REPORT_NAME, long_name]) {
        assert_eq!(got.mail_from, "robot@example.com");
        let msg = MessageParser::default().parse(&got.raw).unwrap();
        assert_eq!(msg.subject(), Some(SUBJECT));
        assert!(msg.message_id().is_some_and(|id| id.contains('@')));
        let part = msg.attachments().next().unwrap();
        assert_eq!(part.attachment_name(), Some(name));
        assert_eq!(part.content_type().unwrap().attribute("name"), Some(name));
    }
    let raw = String::from_utf8_lossy(&received[1].raw);
    assert!(raw.contains("?=\r\n =?UTF-8?B?"), "{raw}");
}

#[tokio::test]
async fn email_plain_relay_without_login_sends_text_and_csv() {
    let pki = Pki::new();
    let server = SmtpServer::start("plain", &pki, None);
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("订单.csv");
    std::fs::write(&csv, "\u{feff}订单号,金额\nA-001,12.5\n").unwrap();

    // security unset: none, by the (ephemeral) port.
    let mut s = settings(server.port, Security::None, None);
    s.security = None;
    let mailer = Mailer::new(&s).unwrap();
    let mail = Mail {
        to: vec!["ops@example.com".into()],
        subject: "plain".into(),
        text: "见附件".into(),
        attachments: vec![csv],
        ..Mail::default()
    };
    let sent = mailer.send(&mail).await;
    assert_eq!(sent.result, Ok("250 OK queued".to_owned()));

    let received = server.received();
    assert_eq!(received.len(), 1);
    let msg = MessageParser::default().parse(&received[0].raw).unwrap();
    assert_eq!(msg.body_text(0).unwrap().trim_end(), "见附件");
    assert!(msg.body_html(0).is_none_or(|h| !h.contains("<h1>")));
    let part = msg.attachments().next().unwrap();
    assert_eq!(part.attachment_name(), Some("订单.csv"));
    let ctype = part.content_type().unwrap();
    assert_eq!((ctype.ctype(), ctype.subtype()), ("text", Some("csv")));
    assert_eq!(
        part.contents(),
        "\u{feff}订单号,金额\nA-001,12.5\n".as_bytes()
    );
}

#[tokio::test]
async fn email_wrong_password_is_an_auth_error_without_retries() {
    let pki = Pki::new();
    let server = SmtpServer::start("starttls", &pki, Some(("robot", "the-right-one")));
    let s = with_login(
        settings(server.port, Security::Starttls, Some(pki.ca())),
        "robot",
        PASSWORD,
    );
    let mailer = Mailer::new(&s).unwrap();
    let mail = Mail {
        to: vec!["ops@example.com".into()],
        subject: "x".into(),
        text: "x".into(),
        ..Mail::default()
    };
    let started = Instant::now();
    let sent = mailer.send(&mail).await;
    assert_eq!(sent.attempts, 1, "{sent:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "retried?");
    let err = sent.result.unwrap_err();
    assert!(matches!(err, EmailError::Auth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("535"), "{text}");
    assert!(text.contains("robot"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{err:?} {mailer:?}").contains(PASSWORD));
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn email_untrusted_certificate_is_a_tls_error() {
    let pki = Pki::new();
    for (mode, security) in [("tls", Security::Tls), ("starttls", Security::Starttls)] {
        let server = SmtpServer::start(mode, &pki, None);
        // No ca_file: the test CA is not among the system roots.
        let mailer = Mailer::new(&settings(server.port, security, None)).unwrap();
        let mail = Mail {
            to: vec!["ops@example.com".into()],
            subject: "x".into(),
            text: "x".into(),
            ..Mail::default()
        };
        let sent = mailer.send(&mail).await;
        assert_eq!(sent.attempts, 1, "{mode}: {sent:?}");
        let err = sent.result.unwrap_err();
        assert!(matches!(err, EmailError::Tls { .. }), "{mode}: {err:?}");
        assert!(err.to_string().contains("certificate"), "{mode}: {err}");
        assert!(server.received().is_empty());
    }
}

#[tokio::test]
async fn email_blackhole_times_out_after_every_attempt() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });

    let mail = Mail {
        to: vec!["ops@example.com".into()],
        subject: "x".into(),
        text: "x".into(),
        ..Mail::default()
    };
    // Plain SMTP waits for a greeting; implicit TLS for a handshake (lettre #1027).
    let run = |security| {
        let mail = mail.clone();
        async move {
            let mut s = settings(port, security, None);
            s.smtp_server = Some("127.0.0.1".into());
            s.smtp_timeout = 1;
            s.retry_attempts = 2;
            s.retry_delay = 1;
            let mailer = Mailer::new(&s).unwrap();
            let started = Instant::now();
            let sent = mailer.send(&mail).await;
            (sent, started.elapsed())
        }
    };
    let (plain, tls) = tokio::join!(run(Security::None), run(Security::Tls));
    for (sent, elapsed) in [plain, tls] {
        assert_eq!(sent.attempts, 2, "{sent:?}");
        let err = sent.result.unwrap_err();
        assert!(
            matches!(err, EmailError::Timeout { seconds: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("within 1s"), "{err}");
        // Two 1 s attempts with 1 s between them.
        assert!(elapsed >= Duration::from_millis(2900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    }
    holder.abort();
}

#[tokio::test]
async fn email_refused_connection_is_retried() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = settings(port, Security::None, None);
    s.smtp_server = Some("127.0.0.1".into());
    s.retry_attempts = 3;
    s.retry_delay = 0;
    let mailer = Mailer::new(&s).unwrap();
    let mail = Mail {
        to: vec!["ops@example.com".into()],
        text: "x".into(),
        ..Mail::default()
    };
    let sent = mailer.send(&mail).await;
    assert_eq!(sent.attempts, 3, "{sent:?}");
    let err = sent.result.unwrap_err();
    assert!(matches!(err, EmailError::Connection { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn email_bad_settings_and_inputs_name_the_fault() {
    let mut s = settings(25, Security::None, None);
    s.smtp_server = None;
    let err = Mailer::new(&s).unwrap_err();
    assert_eq!(err.to_string(), "email: email.smtp_server is not set");

    let mut s = settings(25, Security::None, None);
    s.from_address = Some("not-an-address".into());
    let err = Mailer::new(&s).unwrap_err().to_string();
    assert!(err.contains("\"not-an-address\""), "{err}");

    let mut s = settings(25, Security::None, None);
    s.from_address = None;
    let err = Mailer::new(&s).unwrap_err().to_string();
    assert!(err.contains("email.from_address is not set"), "{err}");

    let s = settings(
        465,
        Security::Tls,
        Some(PathBuf::from("/nonexistent/ca.pem")),
    );
    let err = Mailer::new(&s).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");

    let files = tempfile::tempdir().unwrap();
    let not_pem = files.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let s = settings(465, Security::Tls, Some(not_pem));
    let err = Mailer::new(&s).unwrap_err().to_string();
    assert!(err.contains("is not a PEM certificate"), "{err}");

    // Bad inputs are refused before any connection (nothing listens on port 9).
    let mailer = Mailer::new(&settings(9, Security::None, None)).unwrap();
    let sent = mailer
        .send(&Mail {
            to: vec!["ops@example.com".into(), "张三 <broken".into()],
            ..Mail::default()
        })
        .await;
    assert_eq!(sent.attempts, 0);
    let err = sent.result.unwrap_err().to_string();
    assert!(err.contains("\"张三 <broken\""), "{err}");

    let sent = mailer
        .send(&Mail {
            to: vec!["ops@example.com".into()],
            attachments: vec![files.path().join("missing.xlsx")],
            ..Mail::default()
        })
        .await;
    assert_eq!(sent.attempts, 0);
    let err = sent.result.unwrap_err();
    assert!(matches!(err, EmailError::Attachment { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.xlsx"), "{err}");

    let sent = mailer.send(&Mail::default()).await;
    assert_eq!(sent.attempts, 0);
    assert!(
        sent.result
            .unwrap_err()
            .to_string()
            .contains("no recipient")
    );
}
