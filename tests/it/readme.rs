//! The README's commands exist as written: every `webhook-worker`
//! invocation in its `sh` blocks (as `$w ...`, `cargo run --release -- ...`
//! or `webhook-worker ...`) names a real subcommand and only flags that
//! subcommand's `--help` lists. (Links, anchors, paths and the quick start
//! against `.ci/run` are checked by `scripts/check-docs.py`.)

use crate::harness::*;

/// The `webhook-worker` arguments of each command line in the README's
/// `sh` blocks.
fn readme_invocations() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut fenced = false;
    let mut found = Vec::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            fenced = line == "```sh";
            continue;
        }
        if !fenced {
            continue;
        }
        let command = line.split(" #").next().unwrap_or("").trim();
        let rest = ["$w ", "cargo run --release -- ", "webhook-worker "]
            .iter()
            .find_map(|p| command.strip_prefix(p));
        if let Some(rest) = rest {
            let words: Vec<String> = rest
                .split_whitespace()
                .take_while(|w| !matches!(*w, "&" | "|" | ">" | "&&"))
                .map(str::to_string)
                .collect();
            found.push(words);
        }
    }
    found
}

#[test]
fn the_readme_demo_uses_only_flags_its_commands_have() {
    let invocations = readme_invocations();
    assert!(
        invocations.len() >= 6,
        "the demo's commands were not found: {invocations:?}"
    );
    for words in invocations {
        let subcommand: Vec<&str> = words
            .iter()
            .take_while(|w| !w.starts_with('-'))
            .map(String::as_str)
            .collect();
        let out = bin().args(&subcommand).arg("--help").output().unwrap();
        let (help, stderr) = printed(&out);
        assert!(out.status.success(), "{subcommand:?} --help: {stderr}");
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "README: `{}` uses {flag}, which `{} --help` does not list",
                words.join(" "),
                subcommand.join(" ")
            );
        }
    }
}
