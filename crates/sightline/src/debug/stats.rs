//! Per route and per method: count, errors and latency quantiles, read from the same
//! histograms `/metrics` exposes (the Prometheus exposition, parsed).

use std::collections::BTreeMap;

/// One route's or method's histogram, summed over its other labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CallStats {
    pub(crate) count: f64,
    pub(crate) errors: f64,
    /// Cumulative counts by upper bound, `+Inf` last.
    pub(crate) buckets: BTreeMap<OrderedBound, f64>,
}

/// A bucket bound that sorts (`+Inf` last).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OrderedBound(pub(crate) f64);

impl Eq for OrderedBound {}

impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl CallStats {
    /// The `q` quantile, interpolated within its bucket as `histogram_quantile` does; `None`
    /// without requests.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.values().last().copied()?;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for (bound, &count) in &self.buckets {
            if count >= rank {
                if bound.0.is_infinite() {
                    return Some(lower.0);
                }
                let in_bucket = count - lower.1;
                let fraction = if in_bucket > 0.0 {
                    (rank - lower.1) / in_bucket
                } else {
                    1.0
                };
                return Some(lower.0 + (bound.0 - lower.0) * fraction);
            }
            lower = (bound.0, count);
        }
        Some(lower.0)
    }
}

/// `{a="b",c="d"}` as pairs; `None` when malformed.
fn labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = text.strip_prefix('{')?.strip_suffix('}')?;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        out.push((name.trim_start_matches(',').to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// The stats of `metric` (a histogram's base name) by `key` label, from an exposition.
pub(crate) fn parse(exposition: &str, metric: &str, key: &str) -> BTreeMap<String, CallStats> {
    let bucket = format!("{metric}_bucket{{");
    let count = format!("{metric}_count{{");
    let mut out: BTreeMap<String, CallStats> = BTreeMap::new();
    for line in exposition.lines() {
        let is_bucket = line.starts_with(&bucket);
        if !is_bucket && !line.starts_with(&count) {
            continue;
        }
        let Some(open) = line.find('{') else { continue };
        let Some(close) = line.rfind('}') else {
            continue;
        };
        let Some(pairs) = labels(&line[open..=close]) else {
            continue;
        };
        let Some(value) = line[close + 1..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let find = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(name) = find(key) else { continue };
        let stats = out.entry(name.to_owned()).or_default();
        if is_bucket {
            let Some(le) = find("le").and_then(|le| match le {
                "+Inf" => Some(f64::INFINITY),
                other => other.parse().ok(),
            }) else {
                continue;
            };
            *stats.buckets.entry(OrderedBound(le)).or_default() += value;
        } else {
            stats.count += value;
            if find("error_type").is_some_and(|e| !e.is_empty()) {
                stats.errors += value;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_by_route_with_quantiles() {
        let text = "\
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{http_route=\"/a\",le=\"0.1\"} 50
http_server_request_duration_seconds_bucket{http_route=\"/a\",le=\"1\"} 100
http_server_request_duration_seconds_bucket{http_route=\"/a\",le=\"+Inf\"} 100
http_server_request_duration_seconds_count{http_route=\"/a\"} 100
http_server_request_duration_seconds_bucket{http_route=\"/a\",error_type=\"500\",le=\"0.1\"} 0
http_server_request_duration_seconds_bucket{http_route=\"/a\",error_type=\"500\",le=\"1\"} 10
http_server_request_duration_seconds_bucket{http_route=\"/a\",error_type=\"500\",le=\"+Inf\"} 10
http_server_request_duration_seconds_count{http_route=\"/a\",error_type=\"500\"} 10
http_server_request_duration_seconds_count{http_route=\"/b \\\"q\\\"\"} 3
";
        let stats = parse(text, "http_server_request_duration_seconds", "http_route");
        let a = &stats["/a"];
        assert_eq!((a.count, a.errors), (110.0, 10.0));
        // Buckets summed over the error series too: 50 by 0.1, 110 by 1; the 55th of 110
        // lies 5/60 of the way from 0.1 to 1.
        let p50 = a.quantile(0.5).expect("p50");
        assert!((p50 - 0.175).abs() < 1e-9, "{p50}");
        assert!(a.quantile(0.99).expect("p99") <= 1.0);
        assert_eq!(stats["/b \"q\""].count, 3.0);
    }
}
