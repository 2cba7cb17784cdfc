//! Unit tests of attachment sizes and headers, and of which failures are transient.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::attachments::{attachment_part, encoded_len, encoded_words};
use super::*;
use crate::model::mime::XLSX;

fn file_of(dir: &Path, name: &str, len: usize) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, vec![b'x'; len]).unwrap();
    path
}

#[test]
fn email_encoded_len_counts_base64_and_line_breaks() {
    assert_eq!(encoded_len(0), 0);
    assert_eq!(encoded_len(1), 4 + 2);
    assert_eq!(encoded_len(57), 76 + 2);
    assert_eq!(encoded_len(58), 80 + 4);
    // 3 MiB → exactly 4 MiB of base64 in 55,189 lines (the last one partial).
    assert_eq!(
        encoded_len(3 << 20),
        (4 << 20) + 2 * (4u64 << 20).div_ceil(76)
    );
}

#[test]
fn email_check_attachments_sums_files_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let a = file_of(dir.path(), "a.xlsx", 300);
    let b = file_of(dir.path(), "订单.csv", 30);
    let total = check_attachments(&[a, b], 1 << 20).unwrap();
    assert_eq!(total, encoded_len(300) + encoded_len(30));
    assert_eq!(check_attachments(&[], 0), Ok(0));
}

#[test]
fn email_check_attachments_names_sizes_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let big = file_of(dir.path(), "big.xlsx", 3 << 20);
    let err = check_attachments(std::slice::from_ref(&big), 4 << 20)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "the report (4.1MB encoded) is over email.max_attachment_size (4MB)"
    );
    let small = file_of(dir.path(), "small.csv", 10);
    let err = check_attachments(&[big, small], 1000)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the 2 report files (4.1MB encoded)"),
        "{err}"
    );
    assert!(err.ends_with("email.max_attachment_size (1000B)"), "{err}");
}

#[test]
fn email_check_attachments_reports_a_missing_file() {
    let err = check_attachments(&[PathBuf::from("/nonexistent/报表.xlsx")], 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read attachment /nonexistent/报表.xlsx"),
        "{err}"
    );
}

#[test]
fn email_attachment_headers_carry_both_name_encodings() {
    let part = attachment_part(Path::new("/tmp/订单日报_20240101.xlsx"), b"PK".to_vec());
    let text = String::from_utf8(part.formatted()).unwrap();
    assert!(text.is_ascii(), "{text}");
    assert!(
        text.contains("filename*=UTF-8''%E8%AE%A2%E5%8D%95%E6%97%A5%E6%8A%A5_20240101.xlsx\r\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{XLSX};\r\n name=\"=?UTF-8?B?")),
        "{text}"
    );
    assert!(text.contains("Content-Transfer-Encoding: base64"), "{text}");

    let plain = attachment_part(Path::new("r \"1\".csv"), b"a,b\n".to_vec());
    let text = String::from_utf8(plain.formatted()).unwrap();
    assert!(text.contains("filename=\"r \\\"1\\\".csv\""), "{text}");
    assert!(text.contains("text/csv; charset=utf-8;\r\n name=\"r \\\"1\\\".csv\""));
}

#[test]
fn email_encoded_words_stay_short_and_split_on_characters() {
    let name = "很长的中文文件名".repeat(6) + ".xlsx";
    let words = encoded_words(&name);
    let mut decoded = String::new();
    for word in words.split("\r\n ") {
        assert!(word.len() <= 75, "{word}");
        let b64 = word
            .strip_prefix("=?UTF-8?B?")
            .unwrap()
            .strip_suffix("?=")
            .unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        decoded.push_str(std::str::from_utf8(&bytes).unwrap());
    }
    assert_eq!(decoded, name);
}

#[test]
fn email_mailer_and_its_sends_cross_threads() {
    fn shareable<T: Send + Sync>() {}
    fn send_future(mailer: &Mailer, mail: &Mail) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&mailer.send(mail));
    }
    shareable::<Mailer>();
    let _ = send_future as fn(&Mailer, &Mail);
}

#[test]
fn email_transient_errors() {
    let server = "h:1".to_owned();
    let rejected = |code| EmailError::Rejected {
        server: server.clone(),
        code,
        text: String::new(),
    };
    assert!(rejected(451).is_transient());
    assert!(!rejected(550).is_transient());
    assert!(
        EmailError::Timeout {
            server: server.clone(),
            seconds: 1
        }
        .is_transient()
    );
    assert!(!EmailError::Config("x".into()).is_transient());
}

#[test]
fn email_retries_only_transient_failures() {
    use crate::notify::retry::{RetryAction, RetryLogic};
    let timeout = EmailError::Timeout {
        server: "h:1".into(),
        seconds: 1,
    };
    assert_eq!(TransientOnly.classify(&timeout), RetryAction::Retry);
    let rejected = EmailError::Rejected {
        server: "h:1".into(),
        code: 550,
        text: String::new(),
    };
    assert_eq!(TransientOnly.classify(&rejected), RetryAction::DontRetry);
}
