//! Installing as a systemd service: `systemd/reportd.service`, `systemd/config.yaml` and
//! `scripts/install.sh`.
//!
//! - The unit passes `systemd-analyze verify` (the Debian `systemd` package, which
//!   `scripts/test.sh` installs) without a single line about it. systemd need not run: the
//!   unit is verified inside a temporary root (`--root`) that holds the unit at
//!   `/etc/systemd/system`, a copy of this host's distribution units (for `sysinit.target`,
//!   `network-online.target`, ...), the built `reportd` at `/usr/local/bin/reportd` and
//!   `/bin/kill`, because verify also checks that `ExecStart=` and `ExecReload=` name
//!   executables. A copy with a misspelt key must draw a complaint, so the check is known to
//!   read the unit.
//! - The production config loads, and everything the daemon writes under it (store, exports,
//!   temp files, PID file, log) lies inside the unit's `ReadWritePaths=`; the unit's stop
//!   timeout covers the shutdown drain.
//! - `DESTDIR=… scripts/install.sh --no-build` stages binary, unit, config, templates and
//!   directories without root; the staged config passes `check`; a second run keeps the
//!   operator's edits; `--uninstall` removes the binary and the unit and keeps the config;
//!   `--uninstall --purge` removes the rest.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use reportd::config::Settings;

use crate::helpers::{repo, reportd_cmd};

/// `systemd-analyze verify --root=ROOT UNIT`: exit status and everything it printed.
fn verify(root: &Path, unit: &str) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg(unit)
        .output()
        .expect(
            "systemd-analyze not found: install Debian's systemd package (scripts/test.sh does)",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn unit_file_verifies_clean() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let unit = fs::read_to_string(repo().join("systemd/reportd.service")).unwrap();
    fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    fs::write(r.join("etc/systemd/system/reportd.service"), &unit).unwrap();
    // The distribution's units, symlinks (aliases) kept as they are.
    fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg("/usr/lib/systemd/system")
        .arg(r.join("usr/lib/systemd"))
        .status()
        .unwrap();
    assert!(copied.success(), "cp -a /usr/lib/systemd/system failed");
    // The programs the unit runs, at the paths it names.
    fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    fs::copy(
        assert_cmd::cargo::cargo_bin("reportd"),
        r.join("usr/local/bin/reportd"),
    )
    .unwrap();
    fs::create_dir_all(r.join("bin")).unwrap();
    fs::copy("/bin/kill", r.join("bin/kill")).unwrap();

    let (ok, text) = verify(r, "reportd.service");
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("reportd.service"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify complains about the unit:\n{}",
        complaints.join("\n")
    );

    // The same check on a unit with a misspelt key is not silent.
    fs::write(
        r.join("etc/systemd/system/reportd-typo.service"),
        unit.replace("UMask=0027", "UMask=0027\nProtectKernelTunabels=yes"),
    )
    .unwrap();
    let (_, text) = verify(r, "reportd-typo.service");
    assert!(
        text.contains("reportd-typo.service") && text.contains("ProtectKernelTunabels"),
        "verify did not notice the misspelt key:\n{text}"
    );
}

/// `reportd --config CONFIG check ARGS`, which must succeed; its stdout.
fn check(config: &Path, args: &[&str]) -> String {
    let out = reportd_cmd()
        .arg("--config")
        .arg(config)
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    stdout_of(out, "reportd check")
}

/// The stdout of a command that must have succeeded (else fails with `what` and both
/// outputs).
fn stdout_of(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value of `KEY=` in the unit text (first occurrence).
fn directive<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key}= missing from systemd/reportd.service"))
}

#[test]
fn service_config_fits_the_unit() {
    let settings = Settings::load(&repo().join("systemd/config.yaml")).unwrap();
    let unit = fs::read_to_string(repo().join("systemd/reportd.service")).unwrap();

    assert_eq!(
        directive(&unit, "ExecStart"),
        "/usr/local/bin/reportd --config /etc/reportd/config.yaml run"
    );
    assert_eq!(
        directive(&unit, "Environment"),
        "REPORTD_CONFIG=/etc/reportd/config.yaml"
    );
    assert_eq!(settings.templates_dir, Path::new("/etc/reportd/templates"));
    assert_eq!(settings.http.bind.to_string(), "127.0.0.1:5002");

    // ProtectSystem=strict: the daemon may write only below ReadWritePaths=.
    let writable: Vec<&Path> = directive(&unit, "ReadWritePaths")
        .split_whitespace()
        .map(Path::new)
        .collect();
    let mut written = vec![
        settings.system_database.sqlite_path.clone(),
        settings.export.output_dir.clone(),
        settings.export.temp_dir.clone(),
        settings.daemon.pid_file.clone(),
    ];
    written.extend(settings.logging.file.clone());
    for path in &written {
        assert!(
            path.is_absolute() && writable.iter().any(|w| path.starts_with(w)),
            "{} is not below ReadWritePaths={writable:?}",
            path.display()
        );
    }

    // systemd must not SIGKILL the daemon while it drains running executions.
    let stop: u64 = directive(&unit, "TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(
        stop > settings.daemon.shutdown_timeout,
        "TimeoutStopSec={stop}s does not cover daemon.shutdown_timeout={}",
        settings.daemon.shutdown_timeout
    );
}

/// Runs `scripts/install.sh ARGS` staged into `destdir`, expects success, returns stdout.
fn install(destdir: &Path, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .args(args)
        .env("DESTDIR", destdir)
        .env("REPORTD_BIN", assert_cmd::cargo::cargo_bin("reportd"))
        .output()
        .unwrap();
    stdout_of(out, &format!("install.sh {args:?}"))
}

/// The names of the debug info sections (`.debug_*`, but for `.debug_gdb_scripts`, which is
/// loaded data) of an ELF64 little-endian file.
fn debug_sections(path: &Path) -> Vec<String> {
    let elf = fs::read(path).unwrap();
    assert_eq!(
        &elf[..6],
        b"\x7fELF\x02\x01",
        "{} is not ELF64 LE",
        path.display()
    );
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u64_at =
        |o: usize| usize::try_from(u64::from_le_bytes(elf[o..o + 8].try_into().unwrap())).unwrap();
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let names_at = u64_at(shoff + shstrndx * shentsize + 0x18);
    (0..shnum)
        .map(|i| {
            let start = names_at + u32_at(shoff + i * shentsize);
            let end = start + elf[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .filter(|n| n.starts_with(".debug_") && n != ".debug_gdb_scripts")
        .collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && (m.permissions().mode() & 0o111) != 0)
}

#[test]
fn install_script_stages_and_uninstalls() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    let bin = d.join("usr/local/bin/reportd");
    let unit = d.join("etc/systemd/system/reportd.service");
    let config = d.join("etc/reportd/config.yaml");
    let templates = d.join("etc/reportd/templates");

    let out = install(d, &["--no-build"]);
    assert!(out.contains("installed /etc/reportd/config.yaml"), "{out}");
    assert!(out.contains("systemctl enable --now reportd"), "{out}");
    assert!(is_executable(&bin), "{} missing", bin.display());
    // Installed without debug info (the test binary has plenty), and it still runs.
    let source = assert_cmd::cargo::cargo_bin("reportd");
    assert!(!debug_sections(&source).is_empty());
    assert_eq!(debug_sections(&bin), Vec::<String>::new());
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        fs::read_to_string(&unit).unwrap(),
        fs::read_to_string(repo().join("systemd/reportd.service")).unwrap()
    );
    let shipped_config = fs::read_to_string(repo().join("systemd/config.yaml")).unwrap();
    assert_eq!(fs::read_to_string(&config).unwrap(), shipped_config);
    for entry in fs::read_dir(repo().join("templates")).unwrap() {
        let src = entry.unwrap().path();
        let staged = templates.join(src.file_name().unwrap());
        assert_eq!(
            fs::read(&staged).unwrap(),
            fs::read(src).unwrap(),
            "{}",
            staged.display()
        );
    }
    for dir in [
        "var/lib/reportd/data",
        "var/lib/reportd/exports",
        "var/lib/reportd/tmp",
        "var/log/reportd",
    ] {
        assert!(d.join(dir).is_dir(), "{dir} missing");
    }

    // The staged config loads as installed. Its paths are absolute (/var/lib/reportd/...),
    // and `check --no-connect` touches none of them.
    let stdout = check(&config, &["--no-connect"]);
    assert!(stdout.contains("ok    config "), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");

    // The same config moved into the staging root works with the staged layout: the store
    // is created under data/ and the staged templates are valid.
    let root = d.to_str().unwrap();
    let moved = shipped_config
        .replace("/var/lib/reportd", &format!("{root}/var/lib/reportd"))
        .replace("/var/log/reportd", &format!("{root}/var/log/reportd"))
        .replace("/etc/reportd", &format!("{root}/etc/reportd"));
    let moved_config = d.join("moved.yaml");
    fs::write(&moved_config, moved).unwrap();
    let stdout = check(&moved_config, &[]);
    assert!(stdout.contains("ok    store "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ok    template {}",
            templates.join("dingtalk_report.md").display()
        )),
        "{stdout}"
    );
    assert!(d.join("var/lib/reportd/data/reportd.db").is_file());

    // Again, after the operator edited the config and a template: both are kept.
    let edited_config = format!("{shipped_config}# edited by the operator\n");
    fs::write(&config, &edited_config).unwrap();
    let template = templates.join("dingtalk_report.md");
    let edited_template = format!("{}\n本地修改\n", fs::read_to_string(&template).unwrap());
    fs::write(&template, &edited_template).unwrap();
    let out = install(d, &["--no-build"]);
    assert!(out.contains("kept /etc/reportd/config.yaml"), "{out}");
    assert_eq!(fs::read_to_string(&config).unwrap(), edited_config);
    assert_eq!(fs::read_to_string(&template).unwrap(), edited_template);
    assert!(is_executable(&bin));

    // Uninstall (twice: nothing left to remove is fine): binary and unit go, config stays.
    install(d, &["--uninstall"]);
    install(d, &["--uninstall"]);
    assert!(!bin.exists(), "binary left after --uninstall");
    assert!(!unit.exists(), "unit left after --uninstall");
    assert_eq!(fs::read_to_string(&config).unwrap(), edited_config);
    assert!(d.join("var/lib/reportd/data/reportd.db").is_file());

    install(d, &["--uninstall", "--purge"]);
    for dir in ["etc/reportd", "var/lib/reportd", "var/log/reportd"] {
        assert!(!d.join(dir).exists(), "{dir} left after --purge");
    }
}
