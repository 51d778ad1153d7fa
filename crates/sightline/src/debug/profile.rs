//! CPU profiles in the pprof format: sampled with the `pprof` crate, encoded here.
//!
//! `pprof`'s own encoder (`prost-codec`) pins prost 0.12; the workspace has one prost, 0.14,
//! so the few messages of `profile.proto` are declared here (docs/adr/0014).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use prost::Message as _;

// perftools.profiles (github.com/google/pprof/proto/profile.proto), the fields we write.

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub(crate) sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub(crate) location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub(crate) function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub(crate) string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub(crate) time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub(crate) duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub(crate) period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub(crate) period: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ValueType {
    #[prost(int64, tag = "1")]
    pub(crate) r#type: i64,
    #[prost(int64, tag = "2")]
    pub(crate) unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub(crate) location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub(crate) value: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Location {
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    #[prost(message, repeated, tag = "4")]
    pub(crate) line: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Line {
    #[prost(uint64, tag = "1")]
    pub(crate) function_id: u64,
    #[prost(int64, tag = "2")]
    pub(crate) line: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Function {
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    #[prost(int64, tag = "2")]
    pub(crate) name: i64,
    #[prost(int64, tag = "3")]
    pub(crate) system_name: i64,
    #[prost(int64, tag = "4")]
    pub(crate) filename: i64,
}

/// Strings by index, `""` first as the format requires.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn id(&mut self, text: &str) -> i64 {
        if self.table.is_empty() {
            self.table.push(String::new());
            self.index.insert(String::new(), 0);
        }
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = self.table.len() as i64;
        self.table.push(text.to_owned());
        self.index.insert(text.to_owned(), id);
        id
    }
}

/// Whether `name` is a frame of the sampling machinery rather than of the sampled code.
fn is_profiler_frame(name: &str) -> bool {
    name.contains("backtrace::")
        || name.contains("pprof::")
        || name.contains("perf_signal_handler")
        || name.starts_with("__restore_rt")
        || name.is_empty()
}

/// The samples of `report` as a pprof `Profile`, sampled every `period` for `duration`.
pub(crate) fn encode(
    report: &pprof::Report,
    frequency: i32,
    started: SystemTime,
    duration: Duration,
) -> Vec<u8> {
    let mut strings = Strings::default();
    let samples_id = strings.id("samples");
    let count_id = strings.id("count");
    let cpu_id = strings.id("cpu");
    let nanos_id = strings.id("nanoseconds");
    let period = 1_000_000_000 / i64::from(frequency.max(1));

    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut function_list = Vec::new();
    let mut locations: HashMap<Vec<(u64, i64)>, u64> = HashMap::new();
    let mut location_list = Vec::new();
    let mut samples = Vec::new();
    for (frames, count) in &report.data {
        let mut location_ids = Vec::with_capacity(frames.frames.len());
        // The innermost frames are the profiler's own (its signal handler unwinding the
        // stack): leave them out, so a sample's first location is the code it interrupted.
        let interrupted = frames
            .frames
            .iter()
            .position(|frame| !frame.iter().all(|s| is_profiler_frame(&s.name())))
            .unwrap_or(0);
        for frame in &frames.frames[interrupted..] {
            // One location per frame; its inlined functions are its lines, innermost first.
            let mut lines = Vec::with_capacity(frame.len());
            for symbol in frame {
                let name = symbol.name();
                let file = symbol
                    .filename
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default();
                let next_id = function_list.len() as u64 + 1;
                let function_id = *functions
                    .entry((name.clone(), file.clone()))
                    .or_insert_with(|| {
                        let name_id = strings.id(&name);
                        function_list.push(Function {
                            id: next_id,
                            name: name_id,
                            system_name: name_id,
                            filename: strings.id(&file),
                        });
                        next_id
                    });
                lines.push((function_id, i64::from(symbol.lineno.unwrap_or(0))));
            }
            let next_id = location_list.len() as u64 + 1;
            let location_id = *locations.entry(lines.clone()).or_insert_with(|| {
                location_list.push(Location {
                    id: next_id,
                    line: lines
                        .iter()
                        .map(|&(function_id, line)| Line { function_id, line })
                        .collect(),
                });
                next_id
            });
            location_ids.push(location_id);
        }
        let count = *count as i64;
        samples.push(Sample {
            location_id: location_ids,
            value: vec![count, count * period],
        });
    }
    let profile = Profile {
        sample_type: vec![
            ValueType {
                r#type: samples_id,
                unit: count_id,
            },
            ValueType {
                r#type: cpu_id,
                unit: nanos_id,
            },
        ],
        sample: samples,
        location: location_list,
        function: function_list,
        string_table: strings.table,
        time_nanos: started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
        duration_nanos: duration.as_nanos() as i64,
        period_type: Some(ValueType {
            r#type: cpu_id,
            unit: nanos_id,
        }),
        period,
    };
    profile.encode_to_vec()
}
