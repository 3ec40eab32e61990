//! `cargo xtask generate [--check]`: writes the generated parts of
//! `template.yaml` (the protected API from `scopes::ROUTES`, the dashboard
//! functions' events from `function_table::FUNCTIONS`); with `--check`, only
//! says whether the committed ones are current (exit 1 when stale).

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: cargo xtask generate [--check]\n\n  generate          write template.yaml's generated parts: the protected API (scopes::ROUTES)\n                    and the dashboard functions' events (function_table::FUNCTIONS)\n  generate --check  exit 1 when they are not current"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let check = match args.as_slice() {
        ["generate"] => false,
        ["generate", "--check"] => true,
        ["help" | "-h" | "--help"] | [] => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{}", usage());
            return ExitCode::FAILURE;
        }
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let current = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xtask: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let updated = match xtask::generate(&current) {
        Ok(t) => t,
        Err(xtask::GenerateError::NoMarkers(part)) => {
            eprintln!("xtask: template.yaml lacks the BEGIN/END lines of {part}'s generated part");
            return ExitCode::FAILURE;
        }
    };
    if check {
        if updated == current {
            println!("template.yaml: the generated parts are current");
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "template.yaml: the generated parts are stale; run `cargo xtask generate` and commit"
            );
            ExitCode::FAILURE
        }
    } else if updated == current {
        println!("template.yaml: already current");
        ExitCode::SUCCESS
    } else {
        match std::fs::write(&path, updated) {
            Ok(()) => {
                println!("template.yaml: generated parts written");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        }
    }
}
