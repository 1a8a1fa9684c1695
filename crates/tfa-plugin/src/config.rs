//! Configuration from the environment, read once (at `import tf_adapter`,
//! when the Python module asks for it, or when TensorFlow loads the plugin).

use std::sync::OnceLock;
use tfa_core::{Error, Result};

/// Default device memory per NPU: 8 GiB. Enough for ResNet-50 training at
/// batch 32; on the host backend it is a budget, not a reservation.
pub const DEFAULT_MEMORY: u64 = 8 << 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `TFA_NPU_COUNT`: NPU devices (default 1).
    pub npu_count: usize,
    /// `TFA_NPU_MEMORY`: capacity per NPU in bytes.
    pub memory: u64,
    /// `TFA_NPU_THREADS`: kernel threads per NPU (default: cores / NPUs, at least 1).
    pub threads: usize,
    /// `TFA_BACKEND`: `host` (default).
    pub backend: String,
    /// `TFA_SPIN_US`: microseconds the kernel threads stay awake after a
    /// kernel, ready for the next (`device::warm`); 0: they sleep at once.
    pub spin_us: u64,
}

/// Default `TFA_SPIN_US`. 200 us and 1 ms gained alike on ResNet50 and
/// MobileNetV2 at batch 1; 1 ms also covers the LSTM's longer gaps
/// (`device::warm`).
pub const DEFAULT_SPIN_US: u64 = 1000;

/// Parses `512M`, `8G`, `1.5G`, `4096` (bytes); K/M/G/T are powers of 1024.
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'B' => 1,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "bad size '{s}': unknown suffix '{c}' (expected bytes, or a number \
                         with K, M, G or T, powers of 1024: e.g. 4096, 512M, 1.5G, 8G)"
                    )))
                }
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| {
        Error::InvalidArgument(format!("bad size '{s}': expected e.g. 4096, 512M or 8G"))
    })?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "bad size '{s}': must be positive"
        )));
    }
    Ok((v * mult as f64) as u64)
}

/// Variable `name` as an integer in `range` (surrounding spaces allowed),
/// `None` when unset; otherwise an error naming the variable, its value and
/// `expected`.
fn int_in<T: std::str::FromStr + PartialOrd>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    range: std::ops::RangeInclusive<T>,
    expected: &str,
) -> Result<Option<T>> {
    get(name)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| Error::InvalidArgument(format!("{name}='{v}': expected {expected}")))
        })
        .transpose()
}

impl Config {
    /// Reads the configuration from a variable lookup (the environment in practice).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let npu_count =
            int_in(&get, "TFA_NPU_COUNT", 1..=64, "an integer from 1 to 64")?.unwrap_or(1);
        let memory = match get("TFA_NPU_MEMORY") {
            Some(v) => parse_bytes(&v).map_err(|e| e.context("TFA_NPU_MEMORY"))?,
            None => DEFAULT_MEMORY,
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let threads = int_in(&get, "TFA_NPU_THREADS", 1..=1024, "a positive integer")?
            .unwrap_or((cores / npu_count).max(1));
        let backend = get("TFA_BACKEND")
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "host".into());
        match backend.as_str() {
            "host" => {}
            "cuda" => {
                return Err(Error::Unimplemented(
                    "TFA_BACKEND=cuda: the cuda backend is not part of this build yet; use TFA_BACKEND=host".into(),
                ))
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "TFA_BACKEND='{other}': expected 'host' or 'cuda'"
                )))
            }
        }
        let spin_us = int_in(
            &get,
            "TFA_SPIN_US",
            0..=1_000_000,
            "microseconds from 0 to 1000000",
        )?
        .unwrap_or(DEFAULT_SPIN_US);
        Ok(Config {
            npu_count,
            memory,
            threads,
            backend,
            spin_us,
        })
    }
}

/// The process configuration, read from the environment on first use.
pub fn get() -> Result<&'static Config> {
    static CONFIG: OnceLock<Result<Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Config::from_lookup(|k| std::env::var(k).ok()))
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config> {
        Config::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.npu_count, 1);
        assert_eq!(c.memory, DEFAULT_MEMORY);
        assert!(c.threads >= 1);
        assert_eq!(c.backend, "host");
        assert_eq!(c.spin_us, DEFAULT_SPIN_US);
    }

    #[test]
    fn sizes_and_errors() {
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("-1").is_err());
        let e = parse_bytes("lots").unwrap_err().to_string();
        assert!(e.contains("512M") && e.contains("powers of 1024"), "{e}");
        assert_eq!(cfg(&[("TFA_NPU_COUNT", "4")]).unwrap().npu_count, 4);
        assert!(cfg(&[("TFA_NPU_COUNT", "0")]).is_err());
        assert!(cfg(&[("TFA_BACKEND", "tpu")]).is_err());
        assert_eq!(cfg(&[("TFA_SPIN_US", "0")]).unwrap().spin_us, 0);
        assert_eq!(cfg(&[("TFA_SPIN_US", " 250 ")]).unwrap().spin_us, 250);
        for bad in ["-5", "1.5", "2000000", "soon"] {
            let e = cfg(&[("TFA_SPIN_US", bad)]).unwrap_err().to_string();
            assert!(e.contains("TFA_SPIN_US") && e.contains(bad), "{e}");
        }
    }
}
