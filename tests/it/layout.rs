//! The shape of `src/`, checked from its text: no dependency cycle among the top-level
//! modules, no source file over 600 lines (tests aside), no `Result<_, String>` outside
//! `src/commands/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file, in lines; `tests.rs` files and files under a `tests/` folder aside.
const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted, as (path relative to `dir`, text).
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `text` without `//` comments (doc comments included), line breaks kept.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.find("//").map_or(line, |i| &line[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to: `config` for `config/mod.rs` and `config.rs`.
fn top_module(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .expect("a path under src")
        .as_os_str()
        .to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// The identifier at the start of `s`, if `s` starts with one.
fn leading_ident(s: &str, upper: bool) -> Option<&str> {
    let first = s.chars().next()?;
    let ok_first =
        first == '_' || first.is_ascii_lowercase() || (upper && first.is_ascii_uppercase());
    if !ok_first {
        return None;
    }
    let end = s
        .find(|c: char| {
            !(c == '_'
                || c.is_ascii_digit()
                || c.is_ascii_lowercase()
                || (upper && c.is_ascii_uppercase()))
        })
        .unwrap_or(s.len());
    Some(&s[..end])
}

/// What follows an opening `{`, up to its matching `}` (or the end).
fn brace_group(s: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &s[1..i];
                }
            }
            _ => {}
        }
    }
    &s[1..]
}

/// The first path segment of each item of a use group: `a, b::c, d::{e, f}` → a, b, d.
fn group_heads(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut depth, mut current) = (0i32, String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            items.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    items.push(current);
    items
        .iter()
        .filter_map(|item| leading_ident(item.trim(), true).map(str::to_string))
        .collect()
}

/// The top-level modules a file's text names through `crate::x` or `crate::{a, b::c}`.
fn crate_uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if rest.starts_with('{') {
            out.extend(group_heads(brace_group(rest)));
        } else if let Some(name) = leading_ident(rest, false) {
            out.push(name.to_string());
        }
    }
    out
}

/// module → module it uses → files where it does.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<PathBuf>>>;

fn module_graph(files: &[(PathBuf, String)]) -> Graph {
    let mut graph = Graph::new();
    for (rel, text) in files {
        let from = top_module(rel);
        if from == "lib" || from == "main" {
            continue;
        }
        graph.entry(from.clone()).or_default();
        for to in crate_uses(&strip_comments(text)) {
            if to != from && to != "self" {
                graph.entry(to.clone()).or_default();
                graph
                    .get_mut(&from)
                    .expect("inserted")
                    .entry(to)
                    .or_default()
                    .insert(rel.clone());
            }
        }
    }
    graph
}

/// The strongly connected components of `graph` with more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph[v].keys() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                loop {
                    let w = self.stack.pop().expect("v is on the stack");
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

/// Every `Result<…, String>` (and `type Err = String`) in `text`, as 1-based line numbers.
fn string_errors(text: &str) -> Vec<usize> {
    let text = strip_comments(text);
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut lines = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("Result<") {
        let start = from + i + "Result<".len();
        from = start;
        let boundary = text[..start - "Result<".len()]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if !boundary {
            continue;
        }
        // The arguments up to the matching `>`; the `>` of `->` closes nothing.
        let (mut depth, mut args, mut last) = (1i32, vec![String::new()], '\0');
        for c in text[start..].chars() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' if last == '-' => {}
                '>' | ')' | ']' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
            if c == ',' && depth == 1 {
                args.push(String::new());
            } else {
                args.last_mut().expect("one argument at least").push(c);
            }
            last = c;
        }
        let error = args.last().map_or("", |a| a.trim());
        if args.len() > 1 && matches!(error, "String" | "string::String" | "std::string::String") {
            lines.push(line_of(start));
        }
    }
    for (i, line) in text.lines().enumerate() {
        let squeezed: String = line.split_whitespace().collect();
        if squeezed.contains("typeErr=String;") || squeezed.contains("typeErr=std::string::String;")
        {
            lines.push(i + 1);
        }
    }
    lines.sort_unstable();
    lines.dedup();
    lines
}

#[test]
fn no_cycle_among_top_level_modules() {
    let graph = module_graph(&sources(&src()));
    let found = cycles(&graph);
    let mut report = String::new();
    for component in &found {
        report.push_str(&format!("cycle: {}\n", component.join(", ")));
        for a in component {
            for (b, files) in &graph[a] {
                if component.contains(b) {
                    let files: Vec<String> =
                        files.iter().map(|f| f.display().to_string()).collect();
                    report.push_str(&format!("  {a} -> {b}: {}\n", files.join(", ")));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "dependency cycles among src's top-level modules:\n{report}"
    );
}

#[test]
fn no_source_file_over_600_lines() {
    let long: Vec<String> = sources(&src())
        .into_iter()
        .filter(|(rel, _)| {
            rel.file_name().is_some_and(|n| n != "tests.rs")
                && !rel
                    .parent()
                    .is_some_and(|p| p.components().any(|c| c.as_os_str() == "tests"))
        })
        .filter_map(|(rel, text)| {
            let n = text.lines().count();
            (n > MAX_LINES).then(|| format!("src/{}: {n} lines", rel.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "source files over {MAX_LINES} lines (move tests to a tests.rs or split):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_string_errors_outside_commands() {
    let found: Vec<String> = sources(&src())
        .into_iter()
        .filter(|(rel, _)| !rel.starts_with("commands"))
        .flat_map(|(rel, text)| {
            string_errors(&text)
                .into_iter()
                .map(move |line| format!("src/{}:{line}", rel.display()))
        })
        .collect();
    assert!(
        found.is_empty(),
        "Result<_, String> outside src/commands/ (use a thiserror enum):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert_eq!(
        crate_uses("use crate::{a, b::c, d::{e, F}, self};\nlet x = crate::g::h();"),
        ["a", "b", "d", "self", "g"]
    );
    assert_eq!(
        crate_uses(&strip_comments("// crate::hidden\nx")),
        Vec::<String>::new()
    );
    let mut graph = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default();
        graph.entry(b.into()).or_default();
    }
    assert_eq!(cycles(&graph), [["a", "b", "c"]]);
    let text = "fn a() -> Result<(), String> {}\n\
                fn b() -> Result<Option<String>, E> {}\n\
                fn c(f: impl Fn() -> Result<Vec<u8>, std::string::String>) {}\n\
                fn d() -> io::Result<String> {}\n\
                /// Result<(), String> in a comment\n\
                type Err = String;\n\
                fn e() -> MyResult<u8, String> {}\n";
    assert_eq!(string_errors(text), [1, 3, 6]);
}
