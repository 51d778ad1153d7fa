//! A dependency-free mutation fuzzer for stable Rust: seeds first, then random mutations of
//! them, bounded in count and time.
//!
//! It has no coverage feedback (that is what `cargo-fuzz` adds on nightly); it relies on
//! seeds that already reach the interesting paths and on mutations that keep most of an input
//! intact: byte flips, insertions of grammar characters, deletions, truncations, repeated
//! chunks (to cross member and size limits) and splices of two seeds.
//!
//! Environment variables, read by [`Config::from_env`]:
//!
//! | variable          | default      | meaning                                         |
//! |-------------------|--------------|-------------------------------------------------|
//! | `FUZZ_ITERATIONS` | `20000`      | mutated inputs per target, after the seeds      |
//! | `FUZZ_SECONDS`    | `10`         | time limit per target (whichever bound is first) |
//! | `FUZZ_SEED`       | `0x5eed`     | RNG seed (decimal or `0x` hex); same seed, same inputs |

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bounds and seed of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Mutated inputs to run after the seeds.
    pub iterations: u64,
    /// Stop after this long even if `iterations` are not done.
    pub time_limit: Duration,
    /// Seed of the random number generator.
    pub seed: u64,
}

impl Default for Config {
    /// 20,000 inputs or 10 seconds, seed `0x5eed`.
    fn default() -> Self {
        Config {
            iterations: 20_000,
            time_limit: Duration::from_secs(10),
            seed: 0x5eed,
        }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Config {
    /// [`Config::default`], overridden by `FUZZ_ITERATIONS`, `FUZZ_SECONDS` and `FUZZ_SEED`.
    ///
    /// # Panics
    ///
    /// If one of them is set but is not a number: a typo should not silently run the default.
    pub fn from_env() -> Config {
        let mut config = Config::default();
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| parse_u64(&v).unwrap_or_else(|| panic!("{name}={v:?} is not a number")))
        };
        if let Some(n) = var("FUZZ_ITERATIONS") {
            config.iterations = n;
        }
        if let Some(s) = var("FUZZ_SECONDS") {
            config.time_limit = Duration::from_secs(s);
        }
        if let Some(seed) = var("FUZZ_SEED") {
            config.seed = seed;
        }
        config
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Seed files run.
    pub seeds: usize,
    /// Mutated inputs run.
    pub mutations: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// SplitMix64: tiny, fast, and good enough to pick mutations; not for anything secret.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes that matter to these grammars; inserted and substituted more often than others.
const DICT_BYTES: &[u8] = b"-,=;%@:\n \t0123456789abcdefABCDEFdxz/*_+.~\"\\\x00\x7f\xff";

/// Fragments that matter to these grammars.
const DICT_WORDS: &[&[u8]] = &[
    b"00-",
    b"ff-",
    b"-01",
    b"-00",
    b"0000000000000000",
    b"00000000000000000000000000000000",
    b"4bf92f3577b34da6a3ce929d0e0e4736",
    b"00f067aa0ba902b7",
    b"traceparent: ",
    b"tracestate: ",
    b"baggage: ",
    b"b3: ",
    b"x-b3-traceid: ",
    b"x-b3-spanid: ",
    b"x-b3-sampled: ",
    b"x-b3-flags: ",
    b"x-b3-parentspanid: ",
    b"%20",
    b"%E2%9C%93",
    b"%zz",
    b"%",
    b"k=v,",
    b"a@b=c,",
    b";p=1",
    b"true",
    b"false",
    "\u{e9}\u{fffd}".as_bytes(),
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    // half the inputs are one edit away from a seed, where most of the grammar still holds
    let rounds = if rng.chance(2) { 1 } else { 1 + rng.below(6) };
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = DICT_BYTES[rng.below(DICT_BYTES.len())];
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let b = input[i];
                input[i] = if b.is_ascii_lowercase() {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                };
            }
            3 => {
                let byte = if rng.chance(2) {
                    DICT_BYTES[rng.below(DICT_BYTES.len())]
                } else {
                    (rng.next() & 0xff) as u8
                };
                input.insert(rng.below(len + 1), byte);
            }
            4 => {
                let word = DICT_WORDS[rng.below(DICT_WORDS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, word.iter().copied());
            }
            5 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(8)).min(len);
                input.drain(start..end);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 if len > 0 => {
                // repeat a chunk, up to ~100 times, to cross the member and size limits
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let chunk = input[start..end].to_vec();
                let most = if rng.chance(4) { 100 } else { 4 };
                let times = 1 + rng.below(most);
                let at = rng.below(input.len() + 1);
                let repeated: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunk.len() * times)
                    .collect();
                input.splice(at..at, repeated);
            }
            8 if !corpus.is_empty() => {
                // splice: our prefix, another input's suffix
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            9 if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                input.swap(a, b);
            }
            10 if len > 0 => {
                let i = rng.below(len);
                input[i] = input[i].wrapping_add(1 + (rng.next() % 3) as u8);
            }
            _ => {
                let byte = (rng.next() & 0xff) as u8;
                input.push(byte);
            }
        }
    }
    // keep inputs bounded so a run's cost stays bounded
    input.truncate(16 * 1024);
}

/// The checked-in seed directory of `target`: `fuzz/seeds/<target>/`.
pub fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target)
}

/// Reads every file in `dir`, sorted by name; an unreadable or missing directory is empty.
pub fn read_seeds(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect()
}

fn run_one(target: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| target(input))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".to_owned())
    })
}

/// Runs `target` on every seed of `fuzz/seeds/<name>/`, then on mutations of them within
/// `config`'s bounds.
///
/// # Panics
///
/// When the target panics on an input (or there are no seeds): the message gives the input
/// escaped, the seed and iteration that made it, and how to keep it as a regression seed.
pub fn run(name: &str, target: fn(&[u8]), config: Config) -> Stats {
    let start = Instant::now();
    let seeds = read_seeds(&seed_dir(name));
    assert!(
        !seeds.is_empty(),
        "no seeds in {}",
        seed_dir(name).display()
    );
    for (file, input) in &seeds {
        if let Err(msg) = run_one(target, input) {
            panic!(
                "{name}: seed {file} failed: {msg}\ninput: b\"{}\"",
                input.escape_ascii()
            );
        }
    }
    let corpus: Vec<Vec<u8>> = seeds.into_iter().map(|(_, input)| input).collect();
    let mut rng = Rng(config.seed ^ fnv1a(name.as_bytes()));
    let mut input = Vec::new();
    let mut mutations = 0;
    while mutations < config.iterations && start.elapsed() < config.time_limit {
        input.clear();
        input.extend_from_slice(&corpus[rng.below(corpus.len())]);
        mutate(&mut rng, &mut input, &corpus);
        mutations += 1;
        if let Err(msg) = run_one(target, &input) {
            panic!(
                "{name}: mutation {mutations} (FUZZ_SEED={:#x}) failed: {msg}\n\
                 input: b\"{}\"\n\
                 keep it: save those bytes as {}/regression-<what>",
                config.seed,
                input.escape_ascii(),
                seed_dir(name).display(),
            );
        }
    }
    Stats {
        seeds: corpus.len(),
        mutations,
        elapsed: start.elapsed(),
    }
}

/// FNV-1a, to give each target its own stream from one seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs() {
        let corpus = vec![b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()];
        let run = |seed| {
            let mut rng = Rng(seed);
            (0..100)
                .map(|_| {
                    let mut input = corpus[0].clone();
                    mutate(&mut rng, &mut input, &corpus);
                    input
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn env_numbers() {
        assert_eq!(parse_u64("20_000"), Some(20_000));
        assert_eq!(parse_u64("0x5eed"), Some(0x5eed));
        assert_eq!(parse_u64("ten"), None);
    }
}
