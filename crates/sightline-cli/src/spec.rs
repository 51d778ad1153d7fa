//! The SLO spec: a service and its objectives, read from YAML with every error naming the line
//! and the field.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The bucket boundaries of Sightline's duration histograms (the semantic conventions'): a
/// latency threshold must be one of them, since only a boundary splits requests exactly.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A spec, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    service: Spanned<String>,
    #[serde(default)]
    selector: Option<Spanned<BTreeMap<String, String>>>,
    objectives: Spanned<Vec<RawObjective>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    name: Spanned<String>,
    #[serde(default)]
    http_route: Option<Spanned<String>>,
    #[serde(default)]
    rpc_method: Option<Spanned<String>>,
    #[serde(default)]
    availability: Option<Spanned<f64>>,
    #[serde(default)]
    latency_seconds: Option<Spanned<f64>>,
    #[serde(default)]
    latency_target: Option<Spanned<f64>>,
}

/// A checked spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The service, as `service.name` and Prometheus' `job` name it.
    pub service: String,
    /// The label matchers that select the service's series (`job="<service>"` by default).
    pub selector: Vec<(String, String)>,
    /// The objectives, in the order written.
    pub objectives: Vec<Objective>,
}

/// One objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// Its name: a label value of every rule and alert made for it.
    pub name: String,
    /// What it covers.
    pub target: Target,
    /// What it promises.
    pub kind: Kind,
    /// The share of good requests promised, in (0, 1).
    pub goal: f64,
}

/// An HTTP route or a gRPC method.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `http.route`, as the server layer records it (`/users/{id}`).
    HttpRoute(String),
    /// `rpc.method`, fully qualified (`pkg.Service/Method`).
    RpcMethod(String),
}

/// What counts as a good request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Not a server error.
    Availability,
    /// Faster than this many seconds (a bucket boundary).
    Latency(f64),
}

/// A spec that cannot be used: where, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The field, as a path (`objectives[1].availability`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

fn error<T>(
    spanned: &Spanned<T>,
    field: impl Into<String>,
    message: impl Into<String>,
) -> SpecError {
    SpecError {
        line: Some(spanned.referenced.line()),
        field: field.into(),
        message: message.into(),
    }
}

/// A percentage in (0, 100) as a share in (0, 1).
fn share(value: &Spanned<f64>, field: &str) -> Result<f64, SpecError> {
    let percent = value.value;
    if percent.is_finite() && percent > 0.0 && percent < 100.0 {
        Ok(percent / 100.0)
    } else {
        Err(error(
            value,
            field,
            format!("must be a percentage between 0 and 100 (exclusive), not {percent}"),
        ))
    }
}

impl Spec {
    /// Reads and checks a spec.
    pub fn parse(yaml: &str) -> Result<Self, SpecError> {
        let raw: RawSpec = serde_saphyr::from_str(yaml).map_err(|e| {
            // The parser's message names the field and carries the location.
            let text = e.to_string();
            let line = text
                .split("line ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok());
            SpecError {
                line,
                field: "spec".into(),
                message: text.lines().next().unwrap_or_default().to_owned(),
            }
        })?;
        let service = raw.service.value.trim().to_owned();
        if service.is_empty() {
            return Err(error(&raw.service, "service", "must not be empty"));
        }
        let selector = match raw.selector {
            Some(selector) if selector.value.is_empty() => {
                return Err(error(&selector, "selector", "must name at least one label"));
            }
            Some(selector) => selector.value.into_iter().collect(),
            None => vec![("job".to_owned(), service.clone())],
        };
        if raw.objectives.value.is_empty() {
            return Err(error(
                &raw.objectives,
                "objectives",
                "must list at least one objective",
            ));
        }
        let mut names = HashSet::new();
        let mut objectives = Vec::with_capacity(raw.objectives.value.len());
        for (i, raw) in raw.objectives.value.into_iter().enumerate() {
            let path = |field: &str| format!("objectives[{i}].{field}");
            let name = raw.name.value.trim().to_owned();
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !valid_name {
                return Err(error(
                    &raw.name,
                    path("name"),
                    "must be letters, digits, '-', '_' or '.'",
                ));
            }
            if !names.insert(name.clone()) {
                return Err(error(
                    &raw.name,
                    path("name"),
                    format!("{name:?} is used twice"),
                ));
            }
            let target = match (raw.http_route, raw.rpc_method) {
                (Some(route), None) if !route.value.trim().is_empty() => {
                    Target::HttpRoute(route.value.trim().to_owned())
                }
                (None, Some(method)) if method.value.contains('/') => {
                    Target::RpcMethod(method.value.trim().to_owned())
                }
                (None, Some(method)) => {
                    return Err(error(
                        &method,
                        path("rpc_method"),
                        "must be a fully qualified method, `package.Service/Method`",
                    ));
                }
                (Some(route), None) => {
                    return Err(error(&route, path("http_route"), "must not be empty"));
                }
                (Some(route), Some(_)) => {
                    return Err(error(
                        &route,
                        path("http_route"),
                        "an objective covers an http_route or an rpc_method, not both",
                    ));
                }
                (None, None) => {
                    return Err(error(
                        &raw.name,
                        path("http_route"),
                        "an objective needs an http_route or an rpc_method",
                    ));
                }
            };
            let (kind, goal) = match (raw.availability, raw.latency_seconds, raw.latency_target) {
                (Some(availability), None, None) => (
                    Kind::Availability,
                    share(&availability, &path("availability"))?,
                ),
                (None, Some(seconds), Some(target)) => {
                    if !DURATION_BUCKETS.contains(&seconds.value) {
                        return Err(error(
                            &seconds,
                            path("latency_seconds"),
                            format!(
                                "must be a bucket boundary of the duration histograms: {}",
                                DURATION_BUCKETS.map(|b| b.to_string()).join(", ")
                            ),
                        ));
                    }
                    (
                        Kind::Latency(seconds.value),
                        share(&target, &path("latency_target"))?,
                    )
                }
                (None, Some(seconds), None) => {
                    return Err(error(
                        &seconds,
                        path("latency_target"),
                        "a latency objective needs latency_target (percent)",
                    ));
                }
                (None, None, Some(target)) => {
                    return Err(error(
                        &target,
                        path("latency_seconds"),
                        "a latency objective needs latency_seconds",
                    ));
                }
                (Some(availability), _, _) => {
                    return Err(error(
                        &availability,
                        path("availability"),
                        "an objective is availability or latency, not both",
                    ));
                }
                (None, None, None) => {
                    return Err(error(
                        &raw.name,
                        path("availability"),
                        "an objective needs availability, or latency_seconds and latency_target",
                    ));
                }
            };
            objectives.push(Objective {
                name,
                target,
                kind,
                goal,
            });
        }
        Ok(Self {
            service,
            selector,
            objectives,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_into_objectives() {
        let spec = Spec::parse(
            "service: checkout\n\
             objectives:\n\
             \x20 - name: users-available\n\
             \x20   http_route: /users/{id}\n\
             \x20   availability: 99.9\n\
             \x20 - name: hello-fast\n\
             \x20   rpc_method: pkg.Greeter/SayHello\n\
             \x20   latency_seconds: 0.25\n\
             \x20   latency_target: 99\n",
        )
        .expect("valid");
        assert_eq!(spec.service, "checkout");
        assert_eq!(spec.selector, [("job".to_owned(), "checkout".to_owned())]);
        assert_eq!(spec.objectives.len(), 2);
        assert_eq!(
            spec.objectives[0].target,
            Target::HttpRoute("/users/{id}".into())
        );
        assert_eq!(spec.objectives[0].kind, Kind::Availability);
        assert!((spec.objectives[0].goal - 0.999).abs() < 1e-12);
        assert_eq!(spec.objectives[1].kind, Kind::Latency(0.25));
    }

    #[test]
    fn bad_specs_name_the_line_and_the_field() {
        let cases: &[(&str, u64, &str)] = &[
            (
                "service: s\nobjectives:\n  - name: a\n    http_route: /a\n    availability: 150\n",
                5,
                "objectives[0].availability",
            ),
            (
                "service: s\nobjectives:\n  - name: a\n    http_route: /a\n    rpc_method: p.S/M\n    availability: 99\n",
                4,
                "objectives[0].http_route",
            ),
            (
                "service: s\nobjectives:\n  - name: a\n    http_route: /a\n    latency_seconds: 0.3\n    latency_target: 99\n",
                5,
                "objectives[0].latency_seconds",
            ),
            (
                "service: s\nobjectives:\n  - name: a\n    http_route: /a\n    availability: 99\n  - name: a\n    http_route: /b\n    availability: 99\n",
                6,
                "objectives[1].name",
            ),
            ("service: ''\nobjectives: []\n", 1, "service"),
            ("service: s\nobjectives: []\n", 2, "objectives"),
        ];
        for (yaml, line, field) in cases {
            let err = Spec::parse(yaml).expect_err(yaml);
            assert_eq!(
                (err.line, err.field.as_str()),
                (Some(*line), *field),
                "{err}"
            );
        }
        // Unknown fields and wrong types: the parser's own message, with its line.
        let err = Spec::parse("service: s\nobjectives:\n  - name: a\n    http_rute: /a\n")
            .expect_err("unknown field");
        assert!(err.to_string().contains("http_rute"), "{err}");
        assert_eq!(err.line, Some(4), "{err}");
    }
}
