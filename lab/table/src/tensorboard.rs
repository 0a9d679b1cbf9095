//! TensorBoard event files: a trial's curve as scalars that TensorBoard (and anything built on
//! its event reader) shows beside runs from other trainers.
//!
//! The format is small enough to write directly: a file of TFRecords (length, masked CRC-32C
//! of the length, payload, masked CRC-32C of the payload), each payload a protobuf `Event`
//! (tensorflow/core/util/event.proto): the first carries `file_version`, the rest one `Summary`
//! of `simple_value` scalars at a step.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::CurvePoint;

/// Writes `curve` as one run in folder `run` (created if needed): train_loss, lr and grad_norm at
/// every step, val_loss, val_bpb (and FIM trials' val_fim_loss) at evaluations. `started` is the trial's start in seconds
/// since the epoch; it also names the file, so exporting again replaces the same file.
pub fn write_run(run: &Path, started: u64, curve: &[CurvePoint]) -> Result<PathBuf> {
    let mut file = Vec::new();
    record(&mut file, &event(started as f64, 0, |e| string_field(e, 3, "brain.Event:2")));
    for p in curve {
        let mut scalars = vec![("train_loss", p.train_loss), ("lr", p.lr), ("grad_norm", p.grad_norm)];
        scalars.extend(p.val_loss.map(|v| ("val_loss", v)));
        scalars.extend(p.val_bpb.map(|v| ("val_bpb", v)));
        scalars.extend(p.val_fim_loss.map(|v| ("val_fim_loss", v)));
        let summary = scalars.iter().fold(Vec::new(), |mut s, (tag, v)| {
            let mut value = Vec::new();
            string_field(&mut value, 1, tag);
            key(&mut value, 2, 5);
            value.extend_from_slice(&(*v as f32).to_le_bytes());
            bytes_field(&mut s, 1, &value);
            s
        });
        record(&mut file, &event(started as f64 + p.wall_s, p.step as i64, |e| bytes_field(e, 5, &summary)));
    }
    std::fs::create_dir_all(run)?;
    let path = run.join(format!("events.out.tfevents.{started}.codescale"));
    codescale_core::atomic::write_atomic(&path, &file)?;
    Ok(path)
}

/// An `Event`: wall_time (1, double), step (2, int64), then the fields `body` adds.
fn event(wall_time: f64, step: i64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        key(&mut e, 2, 0);
        varint(&mut e, step as u64);
    }
    body(&mut e);
    e
}

fn record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from(field << 3 | wire_type));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn string_field(out: &mut Vec<u8>, field: u32, s: &str) {
    bytes_field(out, field, s.as_bytes());
}

/// TFRecord's checksum: CRC-32C, rotated and offset so that a CRC of CRCs stays strong.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli), bit by bit: event files are small, so no table is worth its code.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn records_frame_their_payload() {
        let dir = tempfile::tempdir().unwrap();
        let curve = [CurvePoint {
            step: 3,
            tokens: 768.0,
            lr: 1e-3,
            train_loss: 2.5,
            val_loss: Some(2.4),
            val_loss_se: None,
            val_bpb: Some(3.5),
            val_fim_loss: None,
            val_fim_loss_se: None,
            task_exact_match: None,
            task_exact_match_se: None,
            val_completion_loss: None,
            val_completion_loss_se: None,
            grad_norm: 0.5,
            wall_s: 1.5,
            expert_load: None,
            router_entropy: None,
            dropped_frac: None,
        }];
        let path = write_run(dir.path(), 1_700_000_000, &curve).unwrap();
        assert!(path.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents.1700000000"));
        let bytes = std::fs::read(&path).unwrap();
        let mut at = 0;
        let mut payloads = Vec::new();
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()), masked_crc(&bytes[at..at + 8]));
            let payload = &bytes[at + 12..at + 12 + len];
            assert_eq!(
                u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap()),
                masked_crc(payload)
            );
            payloads.push(payload.to_vec());
            at += 16 + len;
        }
        assert_eq!(payloads.len(), 2, "the version event and one step");
        assert!(payloads[0].ends_with(b"brain.Event:2"));
        for tag in ["train_loss", "val_loss", "val_bpb", "lr", "grad_norm"] {
            assert!(payloads[1].windows(tag.len()).any(|w| w == tag.as_bytes()), "{tag}");
        }
    }
}
