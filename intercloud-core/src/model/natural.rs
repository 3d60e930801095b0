//! Natural order of names: `worker-2` before `worker-10`.

use std::cmp::Ordering;

/// Compares two names so that runs of ASCII digits compare by their value:
/// `worker-2` < `worker-10` < `worker-10a`. Other characters compare as bytes; names
/// equal in value but not in text (`n-01`, `n-1`) fall back to byte order, so the
/// order is total and consistent with `==`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let si = i;
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            let (dx, dy) = (trim_zeros(&x[si..i]), trim_zeros(&y[sj..j]));
            let ord = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(dy));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            let ord = x[i].cmp(&y[j]);
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| x.cmp(y))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let first = d.iter().position(|&c| c != b'0').unwrap_or(d.len());
    &d[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_by_value() {
        let mut v = vec![
            "worker-10",
            "worker-2",
            "master-1",
            "worker-1",
            "worker-10a",
            "worker-9",
            "w",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "master-1",
                "w",
                "worker-1",
                "worker-2",
                "worker-9",
                "worker-10",
                "worker-10a"
            ]
        );
        assert_eq!(natural_cmp("n-01", "n-1"), "n-01".cmp("n-1"));
        assert_eq!(natural_cmp("a", "a"), Ordering::Equal);
    }
}
