//! The layering of `src/` (docs/architecture.md, "Layout"), checked: a layer imports only
//! the layers below it, and the domain imports neither the crate's other
//! layers nor lapin, reqwest or tokio. Reads the sources as text.

use std::{collections::BTreeMap, fs, path::Path};

/// Top-level modules, bottom first, with the modules each may import.
const ALLOWED: [(&str, &[&str]); 9] = [
    ("domain", &["domain"]),
    ("config", &["config", "domain", "broker"]),
    ("broker", &["broker", "domain"]),
    ("http", &["http", "domain"]),
    ("telemetry", &["telemetry", "domain"]),
    ("error", &["error", "broker", "domain"]),
    (
        "worker",
        &[
            "worker",
            "domain",
            "broker",
            "http",
            "telemetry",
            "config",
            "error",
        ],
    ),
    (
        "app",
        &[
            "app",
            "worker",
            "domain",
            "broker",
            "http",
            "telemetry",
            "config",
            "error",
        ],
    ),
    (
        "cli",
        &[
            "cli",
            "app",
            "domain",
            "broker",
            "http",
            "telemetry",
            "config",
            "error",
        ],
    ),
];

/// Crates the pure domain may not use.
const IMPURE: [&str; 4] = ["lapin", "reqwest", "tokio", "axum"];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level crate modules a file names (`crate::x` and `use crate::{x, ...}`).
fn crate_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the first segment of each item of the group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && c != '{' {
                    item.push(c);
                }
            }
            found.push(first_segment(&item));
        } else {
            found.push(first_segment(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self" && m.chars().next().unwrap().is_lowercase());
    found
}

fn first_segment(s: &str) -> String {
    s.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_layer_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<_, _> = ALLOWED.into_iter().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let may = allowed
            .get(module.as_str())
            .unwrap_or_else(|| panic!("{module} (in {file:?}) has no place in the layer table"));
        // Code only: doc comments may name any module.
        let text: String = fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for used in crate_modules(&text) {
            // `crate::Error` and friends are re-exports at the root.
            if !may.contains(&used.as_str()) && allowed.contains_key(used.as_str()) {
                violations.push(format!("{}: {module} imports {used}", file.display()));
            }
        }
        if module == "domain" {
            for krate in IMPURE {
                if text.contains(&format!("{krate}::")) {
                    violations.push(format!("{}: the domain uses {krate}", file.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_imports() {
    assert_eq!(
        crate_modules("use crate::{broker::{a, b}, domain::x};\nlet y = crate::worker::z;"),
        vec!["broker", "domain", "worker"]
    );
}
