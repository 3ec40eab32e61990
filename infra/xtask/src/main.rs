//! `cargo xtask protected-api [--check]`: writes the protected API's
//! definition into `template.yaml` from `scopes::ROUTES`; with `--check`,
//! only says whether the committed one is current (exit 1 when stale).

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: cargo xtask protected-api [--check]\n\n  protected-api          write the protected API's routes into template.yaml from scopes::ROUTES\n  protected-api --check  exit 1 when template.yaml's generated routes are not current"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let check = match args.as_slice() {
        ["protected-api"] => false,
        ["protected-api", "--check"] => true,
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
    let updated = match xtask::splice(&current, &xtask::protected_paths()) {
        Ok(t) => t,
        Err(_) => {
            eprintln!("xtask: template.yaml has no generated part (the BEGIN/END lines)");
            return ExitCode::FAILURE;
        }
    };
    if check {
        if updated == current {
            println!("template.yaml: the protected API's routes are current");
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "template.yaml: the protected API's routes are stale; run `cargo xtask protected-api` and commit"
            );
            ExitCode::FAILURE
        }
    } else if updated == current {
        println!("template.yaml: already current");
        ExitCode::SUCCESS
    } else {
        match std::fs::write(&path, updated) {
            Ok(()) => {
                println!("template.yaml: protected API routes written");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        }
    }
}
