//! The tuner's recommendation rule, kept apart from the measuring so that it can be tested on
//! made-up points (the tests below).
//!
//! The rule: the smallest shard count whose throughput is within [`THROUGHPUT_TOLERANCE`] of
//! the best measured, and whose hit ratio is less than [`MAX_HIT_RATIO_LOSS`] points below the
//! baseline's (the smallest shard count measured, normally one shard: a single, exact LRU).
//! Fewer shards keep the cache closer to one global LRU, so among counts that are fast enough
//! the smallest wins.

/// How far below the best throughput a shard count may be and still count as "as fast".
pub const THROUGHPUT_TOLERANCE: f64 = 0.05;

/// The most hit ratio, in percentage points, a shard count may lose against the baseline.
pub const MAX_HIT_RATIO_LOSS: f64 = 0.5;

/// One measured shard count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// The shard count.
    pub shards: usize,
    /// Operations per second.
    pub throughput: f64,
    /// Hits / gets, from 0 to 1.
    pub hit_ratio: f64,
}

/// The chosen shard count, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recommendation {
    /// The recommended point.
    pub chosen: Point,
    /// The point with the best throughput.
    pub fastest: Point,
    /// The chosen point's hit-ratio loss against the baseline, in points.
    pub loss: f64,
    /// Whether the chosen point is within the tolerance of the best throughput. If not, every
    /// count that was lost too much hit ratio, and the choice is the fastest count that did
    /// not.
    pub within_tolerance: bool,
}

/// The hit ratio lost going from `baseline` to `hit_ratio`, in percentage points.
pub fn loss_points(baseline: f64, hit_ratio: f64) -> f64 {
    (baseline - hit_ratio) * 100.0
}

/// Applies the rule (module docs) to the measured points; `None` if there are none.
pub fn recommend(points: &[Point]) -> Option<Recommendation> {
    let baseline = points.iter().min_by_key(|p| p.shards)?.hit_ratio;
    let fastest = *points.iter().max_by(|a, b| a.throughput.total_cmp(&b.throughput))?;
    let keeps_hit_ratio = |p: &&Point| loss_points(baseline, p.hit_ratio) < MAX_HIT_RATIO_LOSS;
    let fast_enough =
        |p: &&Point| p.throughput >= (1.0 - THROUGHPUT_TOLERANCE) * fastest.throughput;
    let (chosen, within_tolerance) =
        match points.iter().filter(keeps_hit_ratio).filter(fast_enough).min_by_key(|p| p.shards) {
            Some(p) => (*p, true),
            // The baseline always keeps its own hit ratio, so this finds one.
            None => (
                *points
                    .iter()
                    .filter(keeps_hit_ratio)
                    .max_by(|a, b| a.throughput.total_cmp(&b.throughput))?,
                false,
            ),
        };
    Some(Recommendation {
        chosen,
        fastest,
        loss: loss_points(baseline, chosen.hit_ratio),
        within_tolerance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(shards: usize, throughput: f64, hit_ratio: f64) -> Point {
        Point { shards, throughput, hit_ratio }
    }

    #[test]
    fn the_smallest_count_that_is_fast_enough_and_keeps_its_hit_ratio_wins() {
        let points = [
            point(1, 50.0, 0.800),
            point(2, 90.0, 0.800),
            point(4, 96.0, 0.799),
            point(8, 100.0, 0.798),
            point(16, 99.0, 0.790),
        ];
        let rec = recommend(&points).unwrap();
        assert_eq!((rec.chosen.shards, rec.fastest.shards, rec.within_tolerance), (4, 8, true));
        assert!((rec.loss - 0.1).abs() < 1e-9, "{rec:?}");
    }

    #[test]
    fn when_every_fast_count_loses_hit_ratio_the_fastest_that_keeps_it_wins() {
        // 4 and 8 are fast enough but lose 0.5 points or more; 2 keeps its hit ratio but is not
        // fast enough, yet it is the fastest that keeps it.
        let points = [
            point(1, 50.0, 0.800),
            point(2, 90.0, 0.7999),
            point(4, 96.0, 0.794),
            point(8, 100.0, 0.790),
        ];
        let rec = recommend(&points).unwrap();
        assert_eq!((rec.chosen.shards, rec.within_tolerance), (2, false));
    }

    #[test]
    fn the_tolerance_is_five_percent_of_the_best() {
        assert_eq!(
            recommend(&[point(1, 95.5, 0.5), point(2, 100.0, 0.5)]).unwrap().chosen.shards,
            1
        );
        assert_eq!(
            recommend(&[point(1, 94.5, 0.5), point(2, 100.0, 0.5)]).unwrap().chosen.shards,
            2
        );
    }

    #[test]
    fn no_points_no_recommendation() {
        assert_eq!(recommend(&[]), None);
    }
}
