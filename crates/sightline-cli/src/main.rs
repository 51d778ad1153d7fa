//! `sightline slo rules|dashboard|tests --spec FILE [--window-scale F]`: each writes to stdout.

use std::io::Write as _;
use std::process::ExitCode;

use sightline_cli::spec::Spec;
use sightline_cli::{dashboard, promtool, rules, yaml};

const USAGE: &str = "usage: sightline slo rules --spec FILE [--window-scale F]
       sightline slo dashboard --spec FILE
       sightline slo tests --spec FILE

rules      Prometheus recording rules and burn-rate alerts (YAML)
dashboard  a Grafana dashboard (JSON)
tests      promtool unit tests for the rules, which they read as rules.yaml (YAML)

--window-scale F  multiplies every window and `for` duration (0.01 turns 5m into 3s)";

enum Command {
    Rules,
    Dashboard,
    Tests,
}

struct Args {
    command: Command,
    spec: std::path::PathBuf,
    scale: f64,
}

fn parse() -> Result<Args, String> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_env();
    let mut words = Vec::new();
    let mut spec = None;
    let mut scale = 1.0;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("spec") => spec = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Long("window-scale") => {
                let value = parser.value().map_err(|e| e.to_string())?;
                let text = value.to_string_lossy().into_owned();
                scale = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--window-scale {text:?} is not a positive number"))?;
            }
            Long("help") | Short('h') => return Err(String::new()),
            Value(word) => words.push(word.to_string_lossy().into_owned()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let command = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["slo", "rules"] => Command::Rules,
        ["slo", "dashboard"] => Command::Dashboard,
        ["slo", "tests"] => Command::Tests,
        _ => return Err(format!("unknown command {:?}", words.join(" "))),
    };
    if scale != 1.0 && !matches!(command, Command::Rules) {
        return Err("--window-scale applies to `slo rules` only".into());
    }
    let spec = spec.ok_or("--spec FILE is required")?;
    Ok(Args {
        command,
        spec,
        scale,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("sightline: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.spec) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("sightline: {}: {e}", args.spec.display());
            return ExitCode::FAILURE;
        }
    };
    let spec = match Spec::parse(&text) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("sightline: {}: {e}", args.spec.display());
            return ExitCode::FAILURE;
        }
    };
    let output = match args.command {
        Command::Rules => yaml::to_yaml(&rules::rules(&spec, args.scale)),
        Command::Tests => yaml::to_yaml(&promtool::tests(&spec)),
        Command::Dashboard => {
            let mut json =
                serde_json::to_string_pretty(&dashboard::dashboard(&spec)).unwrap_or_default();
            json.push('\n');
            json
        }
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(output.as_bytes()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
