//! A real browser for the console tests: `chromedriver` on a free port driving headless
//! Debian Chromium (`/usr/bin/chromium`) over WebDriver (fantoccini). Missing either is a
//! failure with a clear message, never a skip: CI installs both (scripts/test.sh).

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver and a browser session; both end on drop.
pub struct Browser {
    pub c: Client,
    driver: Child,
    /// The daemon's `host:port`: every request must stay there.
    pub host: String,
}

impl Drop for Browser {
    /// chromedriver runs in a process group of its own with the Chromium it started: the
    /// whole group goes, so no browser outlives a test, even a failed one.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// A headless Chromium at 1366×768 (English UI, so `Accept-Language` is set by the test
    /// when it wants another), for pages of the daemon at `base`.
    pub async fn start(base: &str) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the console's browser tests need Debian's `{package}` (apt-get install -y chromium chromium-driver; scripts/test.sh installs it)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,768",
                         "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--lang=zh-CN"],
                "prefs": {"intl.accept_languages": "zh-CN,zh"}
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver never answered: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let host = base.trim_start_matches("http://").to_string();
        Browser { c, driver, host }
    }

    /// Goes to `path` of `base`, then checks the page (no JS error, no foreign request).
    pub async fn visit(&self, base: &str, path: &str) {
        self.c.goto(&format!("{base}{path}")).await.unwrap();
        self.check().await;
    }

    /// No JavaScript error was collected, the page's script ran, and every resource came
    /// from the daemon.
    pub async fn check(&self) {
        let v = self
            .c
            .execute(
                "return {errors: window.__errors || null, url: location.href,
                  hosts: performance.getEntriesByType('resource').map(e => new URL(e.name).host)
                    .concat([new URL(location.href).host])};",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            v["errors"],
            json!([]),
            "JS errors (or the script did not run) on {}",
            v["url"]
        );
        for h in v["hosts"].as_array().unwrap() {
            assert_eq!(
                h.as_str().unwrap(),
                self.host,
                "a request left the daemon on {}",
                v["url"]
            );
        }
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.c.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Types `value` into the field `css`.
    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Runs `script` (a function body) and gives its value.
    pub async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.unwrap()
    }

    /// Waits up to 20 s for `script` (a function body) to return true.
    pub async fn until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.js(script).await == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Logs in through the form at `/login?next=…` and waits to land on `next`.
    pub async fn login(&self, base: &str, name: &str, password: &str, next: &str) {
        let enc: String = next.replace('/', "%2F").replace('?', "%3F");
        self.visit(base, &format!("/login?next={enc}")).await;
        self.fill("#username", name).await;
        self.fill("#password", password).await;
        self.click("#login-submit").await;
        let want = format!("{base}{next}");
        self.until(
            "the login to land",
            &format!("return location.href === {want:?} && document.readyState === 'complete';"),
        )
        .await;
        self.check().await;
    }

    /// Saves a screenshot as `target/console-screenshots/<name>.png`.
    pub async fn shot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The time the server took for the current page (its `Server-Timing`), in ms.
    pub async fn server_ms(&self) -> f64 {
        self.js("const n = performance.getEntriesByType('navigation')[0]; const t = n && n.serverTiming.find(s => s.name === 'page'); return t ? t.duration : -1;")
            .await
            .as_f64()
            .unwrap_or(-1.0)
    }
}
