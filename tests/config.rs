//! Guarantee 8 (bad configuration is refused clearly): every refusal of the builder is a typed
//! `BuildError` whose message says what to change; `resize` refuses bad capacities with a
//! `ResizeError` and leaves the cache as it was; the default shard count is valid for every
//! capacity; and the errors are ordinary `std::error::Error + Send + Sync + 'static` values.

use shardlru::{
    BuildError, Busy, Cache, MAX_SHARDS, MIN_DEFAULT_SHARE, ResizeError, SHARDS_PER_CORE,
};

fn build_error(builder: shardlru::Builder<u32, u32>) -> BuildError {
    match builder.build() {
        Ok(cache) => panic!("expected a refusal, got {cache:?}"),
        Err(error) => error,
    }
}

/// Asserts that `error`'s message mentions every one of `parts` (the numbers involved and
/// the fix).
#[track_caller]
fn assert_says(error: &impl std::error::Error, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "message {message:?} should mention {part:?}");
    }
}

#[test]
fn a_missing_capacity_is_refused_and_the_message_names_the_setting() {
    let error = build_error(Cache::builder());
    assert_eq!(error, BuildError::MissingCapacity);
    assert_says(&error, &["capacity(n)"]);
    // Other settings do not stand in for the capacity.
    let error = build_error(Cache::builder().shards(4).max_pending_callbacks(2));
    assert_eq!(error, BuildError::MissingCapacity);
}

#[test]
fn a_zero_capacity_is_refused() {
    let error = build_error(Cache::builder().capacity(0));
    assert_eq!(error, BuildError::ZeroCapacity);
    assert_says(&error, &["capacity is 0", "at least one"]);
}

#[test]
fn zero_shards_are_refused() {
    let error = build_error(Cache::builder().capacity(16).shards(0));
    assert_eq!(error, BuildError::ZeroShards);
    assert_says(&error, &["0", "at least 1"]);
}

#[test]
fn a_shard_count_that_is_not_a_power_of_two_is_refused_with_the_nearest_powers() {
    for (shards, lower, upper) in [(3, "2", "4"), (12, "8", "16"), (1_000, "512", "1024")] {
        let error = build_error(Cache::builder().capacity(100_000).shards(shards));
        assert_eq!(error, BuildError::ShardsNotPowerOfTwo { shards });
        assert_says(&error, &[&shards.to_string(), "power of two", lower, upper]);
    }
}

/// The capacity belongs to the whole cache, so a shard count above it is no error: some shards
/// just hold nothing, and a resize below the shard count works too.
#[test]
fn more_shards_than_capacity_are_accepted_and_keep_the_capacity() {
    let cache = Cache::<u32, u32>::builder().capacity(5).shards(8).build().unwrap();
    assert_eq!((cache.capacity(), cache.shard_count()), (5, 8));
    for key in 0..5 {
        cache.insert(key, key);
    }
    assert_eq!(cache.len(), 5, "nothing evicted while the cache had room");
    for key in 5..40 {
        cache.insert(key, key);
        assert_eq!(cache.len(), 5);
    }
    assert_eq!(cache.resize(2), Ok(()));
    assert_eq!((cache.capacity(), cache.len(), cache.weight()), (2, 2, 2));
}

#[test]
fn a_zero_cap_on_pending_callbacks_is_refused() {
    let error = build_error(Cache::builder().capacity(16).max_pending_callbacks(0));
    assert_eq!(error, BuildError::ZeroMaxPendingCallbacks);
    assert_says(&error, &["max_pending_callbacks", "at least 1"]);
}

#[test]
fn setting_the_hasher_after_the_callback_is_refused_instead_of_dropping_the_callback() {
    let error = build_error(
        Cache::builder()
            .capacity(16)
            .on_evict(|_, _| {})
            .hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
            .hasher(ahash::RandomState::new()),
    );
    assert_eq!(error, BuildError::HasherAfterCallback);
    assert_says(&error, &["hasher", "on_evict", "first"]);
    // The other order is the documented one, and works.
    let cache = Cache::<u32, u32>::builder()
        .hasher(ahash::RandomState::new())
        .capacity(16)
        .on_evict(|_, _| {})
        .build();
    assert!(cache.is_ok());
}

/// Any capacity builds and allocates nothing up front: it is a budget of weight (bytes, with
/// a weigher), not a count of slots. (A shard still indexes at most 2^32 - 1 entries, and one
/// that full evicts its own least recent entry.)
#[test]
fn the_largest_capacity_builds_without_allocating() {
    let cache = Cache::<u32, u32>::builder().capacity(usize::MAX).shards(1).build().unwrap();
    assert_eq!(cache.capacity(), usize::MAX);
    cache.insert(1, 1);
    assert_eq!((cache.get(&1), cache.weight()), (Some(1), 1));
}

/// A capacity too large for the default shard count's shares gets more shards, not a refusal:
/// `capacity(1 << 40)` used to fail with `ShareTooLarge` on a machine with few cores (the
/// default count came from the cores alone), while it built on 64 cores.
#[test]
#[cfg(target_pointer_width = "64")]
fn a_huge_capacity_gets_enough_default_shards_for_its_shares() {
    let cache = Cache::<u32, u32>::builder().capacity(1 << 40).build().unwrap();
    assert_eq!(cache.capacity(), 1 << 40);
    let shards = cache.shard_count();
    assert!(shards.is_power_of_two() && shards <= MAX_SHARDS, "{shards} shards");
    let indexable = shards as u64 * u64::from(u32::MAX);
    assert!(indexable >= 1 << 40, "{shards} shards cannot index 2^40 entries");
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), Some(1));
}

/// Absurd shard counts are refused with a typed error, before anything is allocated:
/// `shards(1 << 40)` used to abort on a failed allocation, and
/// `capacity(usize::MAX).shards(1 << 62)` to panic with "capacity overflow".
#[test]
fn absurd_shard_counts_are_refused_with_a_typed_error() {
    let too_many = |shards| BuildError::TooManyShards { shards, max: MAX_SHARDS };
    let err = build_error(Cache::builder().capacity(usize::MAX).shards(1 << 40));
    assert_eq!(err, too_many(1 << 40));
    assert_says(&err, &["1099511627776 shards", &format!("at most {MAX_SHARDS}")]);
    let err = build_error(Cache::builder().capacity(usize::MAX).shards(1 << 62));
    assert_eq!(err, too_many(1 << 62));
    let err = build_error(Cache::builder().capacity(usize::MAX).shards(MAX_SHARDS * 2));
    assert_eq!(err, too_many(MAX_SHARDS * 2));
    // The most shards are accepted.
    let cache = Cache::<u32, u32>::builder().capacity(MAX_SHARDS).shards(MAX_SHARDS).build();
    assert_eq!(cache.unwrap().shard_count(), MAX_SHARDS);
}

/// Each refusal is about one setting, so the first problem found is reported, and fixing it
/// reveals the next: the user is never told two different things at once.
#[test]
fn fixing_each_reported_problem_in_turn_leads_to_a_cache() {
    let mut errors = Vec::new();
    let attempts: [fn() -> shardlru::Builder<u32, u32>; 3] = [
        || Cache::builder().shards(6).max_pending_callbacks(0),
        || Cache::builder().capacity(2).shards(6).max_pending_callbacks(0),
        || Cache::builder().capacity(2).shards(4).max_pending_callbacks(0),
    ];
    for attempt in attempts {
        errors.push(build_error(attempt()));
    }
    assert_eq!(
        errors,
        [
            BuildError::MissingCapacity,
            BuildError::ShardsNotPowerOfTwo { shards: 6 },
            BuildError::ZeroMaxPendingCallbacks,
        ]
    );
    let cache = Cache::<u32, u32>::builder().capacity(2).shards(4).max_pending_callbacks(1).build();
    assert!(cache.is_ok());
}

/// A cache with some entries in a known order, to check that refused resizes change nothing.
fn filled(capacity: usize, shards: usize) -> Cache<u32, u32> {
    let cache = Cache::builder().capacity(capacity).shards(shards).build().unwrap();
    for key in 0..capacity as u32 * 2 {
        cache.insert(key, key * 10);
    }
    cache.get(&(capacity as u32)); // some recency to preserve
    cache
}

/// Everything a refused resize could have changed.
fn observe(cache: &Cache<u32, u32>) -> (usize, usize, u64, Vec<(u32, u32)>) {
    (cache.capacity(), cache.len(), cache.weight(), cache.snapshot())
}

#[test]
fn a_refused_resize_leaves_the_cache_unchanged() {
    let cache = filled(64, 4);
    let before = observe(&cache);
    assert_eq!(cache.resize(0), Err(ResizeError::ZeroCapacity));
    assert_eq!(observe(&cache), before);
    assert_says(&cache.resize(0).unwrap_err(), &["0", "at least one"]);
    // The cache still works, and the smallest allowed resize is accepted.
    assert_eq!(cache.resize(1), Ok(()));
    assert_eq!((cache.capacity(), cache.len()), (1, 1));
}

#[test]
fn a_resize_to_the_largest_capacity_keeps_every_entry() {
    let cache = filled(16, 1);
    let (_, len, weight, snapshot) = observe(&cache);
    cache.resize(usize::MAX).unwrap();
    assert_eq!(observe(&cache), (usize::MAX, len, weight, snapshot));
}

/// The default shard count is a power of two, at most the capacity, leaves each shard at least
/// `MIN_DEFAULT_SHARE` entries unless there is only one, and is at most `SHARDS_PER_CORE` per
/// core (rounded up to a power of two).
#[test]
fn the_default_shard_count_is_a_power_of_two_within_the_capacity() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = (SHARDS_PER_CORE * cores).next_power_of_two();
    let capacities = (1..=300).chain([511, 512, 513, 1_000, 4_096, 65_537, 1 << 20, 1 << 30]);
    for capacity in capacities {
        let cache = Cache::<u32, u32>::builder().capacity(capacity).build().unwrap();
        let shards = cache.shard_count();
        assert!(shards.is_power_of_two(), "capacity {capacity}: {shards} shards");
        assert!(shards <= capacity, "capacity {capacity}: {shards} shards");
        assert!(shards <= most, "capacity {capacity}: {shards} shards for {cores} cores");
        assert!(
            shards == 1 || capacity / shards >= MIN_DEFAULT_SHARE,
            "capacity {capacity}: {shards} shards leave shares below {MIN_DEFAULT_SHARE}"
        );
        assert_eq!(cache.capacity(), capacity);
    }
    // A cache large enough for every core's shards to keep their minimum share gets them all.
    let cache = Cache::<u32, u32>::builder().capacity(most * MIN_DEFAULT_SHARE).build().unwrap();
    assert_eq!(cache.shard_count(), most);
}

#[test]
fn errors_are_std_errors_that_are_send_sync_and_static() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let build = build_error(Cache::builder());
    is_error(&build);
    let resize = Cache::<u32, u32>::builder().capacity(4).build().unwrap().resize(0).unwrap_err();
    is_error(&resize);
    fn is_error_type<E: std::error::Error + Send + Sync + 'static>() {}
    is_error_type::<Busy>();
    is_error_type::<Busy<(String, Vec<u8>)>>();
    // And they convert into the usual boxed error.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(build);
    assert!(!boxed.to_string().is_empty());
}
