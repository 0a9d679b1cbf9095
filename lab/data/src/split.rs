//! Train/validation split by document hash: a document's side depends only on its content, so
//! adding or removing other documents never moves it.

/// `true` where the document goes to validation. `hashes` are blake3 hashes of the contents.
/// With two or more documents and a positive fraction, each side gets at least one; a single
/// document trains.
pub fn validation(hashes: &[[u8; 32]], fraction: f64) -> Vec<bool> {
    if hashes.len() == 1 {
        return vec![false];
    }
    let unit: Vec<f64> =
        hashes.iter().map(|h| u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64)).collect();
    let mut val: Vec<bool> = unit.iter().map(|&u| u < fraction).collect();
    if hashes.len() >= 2 && fraction > 0.0 {
        let by = |pick_max: bool| {
            (0..unit.len())
                .reduce(|a, b| if (unit[b] > unit[a]) == pick_max && unit[b] != unit[a] { b } else { a })
                .expect("non-empty")
        };
        if !val.contains(&true) {
            val[by(false)] = true;
        }
        if !val.contains(&false) {
            val[by(true)] = false;
        }
    }
    val
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_is_respected_and_both_sides_are_filled() {
        let hashes: Vec<[u8; 32]> = (0..2000u32).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect();
        let n_val = validation(&hashes, 0.05).iter().filter(|&&v| v).count();
        assert!((60..140).contains(&n_val), "{n_val}");
        assert_eq!(validation(&hashes[..2], 1e-9).iter().filter(|&&v| v).count(), 1);
        assert_eq!(validation(&hashes[..2], 0.999_999).iter().filter(|&&v| v).count(), 1);
        assert_eq!(validation(&hashes[..1], 0.05), vec![false]);
    }
}
