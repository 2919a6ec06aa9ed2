//! The broker-node scripts (`scripts/brokers.sh`, `scripts/cluster.sh`,
//! `scripts/tls-broker.sh`) answer a wrong argument or setting with one
//! line naming it and exit 2, before they touch any node.

use std::process::Command;

/// Runs `scripts/<script>` with `args` (and `env`), expecting exit 2 and
/// one line on stderr that names `wrong`.
fn refuses(script: &str, args: &[&str], env: &[(&str, &str)], wrong: &str) {
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&path)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let call = format!("{script} {}", args.join(" "));
    assert_eq!(out.status.code(), Some(2), "{call}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{call}: one line, got {stderr:?}"
    );
    assert!(stderr.contains(wrong), "{call}: {stderr:?} names {wrong:?}");
    assert!(out.stdout.is_empty(), "{call}: nothing on stdout");
}

#[test]
fn brokers_sh_refuses_an_unknown_version() {
    for verb in ["start", "stop", "status", "env"] {
        refuses("brokers.sh", &[verb, "9.9"], &[], "unknown version '9.9'");
    }
}

#[test]
fn cluster_sh_refuses_an_unknown_node_state_or_version() {
    for verb in ["kill", "restart", "stop-app", "start-app"] {
        refuses("cluster.sh", &[verb, "z"], &[], "unknown node 'z'");
    }
    refuses(
        "cluster.sh",
        &["memory-alarm", "z", "on"],
        &[],
        "unknown node 'z'",
    );
    refuses(
        "cluster.sh",
        &["memory-alarm", "a", "maybe"],
        &[],
        "'maybe' is not on or off",
    );
    refuses(
        "cluster.sh",
        &["status"],
        &[("CLUSTER_VERSION", "5")],
        "CLUSTER_VERSION is '5'",
    );
}

#[test]
fn tls_broker_sh_refuses_a_missing_dir_or_an_unknown_option() {
    refuses("tls-broker.sh", &["start"], &[], "usage: start DIR");
    refuses(
        "tls-broker.sh",
        &["start", "/nonexistent", "--bogus"],
        &[],
        "unknown option '--bogus'",
    );
}
