"""Training batches from duration buckets (asrctl.data.batching.BucketBatches)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asrctl import AsrctlError
from asrctl.data.batching import BucketBatches, bucketing

durations = st.lists(st.floats(min_value=0.2, max_value=30.0), min_size=1, max_size=300)


def padded(batch, lengths):
    return len(batch) * max(lengths[i] for i in batch)


@settings(max_examples=200, deadline=None)
@given(lengths=durations, room=st.floats(min_value=1.0, max_value=5.0), cap=st.none() | st.integers(1, 40),
       buckets=st.integers(1, 30), seed=st.integers(0, 2**16), epoch=st.integers(0, 5))
def test_batches_never_exceed_the_seconds_or_the_count_and_visit_every_utterance_once(lengths, room, cap, buckets,
                                                                                       seed, epoch):
    batch_seconds = max(lengths) * room
    sampler = BucketBatches(lengths, batch_seconds=batch_seconds, batch_size=cap, buckets=buckets, seed=seed)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert all(padded(batch, lengths) <= batch_seconds for batch in batches)
    assert cap is None or all(len(batch) <= cap for batch in batches)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert len(batches) == len(sampler)  # the same every epoch: the trainers plan steps by it
    sampler.set_epoch(epoch + 1)
    assert len(list(sampler)) == len(batches)


def test_an_epoch_is_drawn_from_the_seed_and_the_epoch_alone():
    lengths = [random.Random(i).uniform(1, 20) for i in range(200)]

    def epoch(seed, number):
        sampler = BucketBatches(lengths, batch_seconds=60, seed=seed)
        sampler.set_epoch(number)
        return list(sampler)

    assert epoch(3, 2) == epoch(3, 2)  # a resumed run's sampler, made anew, draws the same epoch
    assert epoch(3, 2) != epoch(3, 1) and epoch(3, 2) != epoch(4, 2)
    # each epoch mixes the utterances of a bucket anew, not only the order of fixed batches
    assert {tuple(sorted(b)) for b in epoch(3, 1)} != {tuple(sorted(b)) for b in epoch(3, 2)}


def test_buckets_keep_padding_small_where_random_batches_of_the_same_seconds_would_not():
    rng = random.Random(0)
    lengths = [rng.uniform(1, 20) for _ in range(500)]
    bucketed = list(BucketBatches(lengths, batch_seconds=80, seed=0))
    share = 1 - sum(lengths) / sum(padded(b, lengths) for b in bucketed)
    order = rng.sample(range(500), 500)
    plain = [order[i:i + 4] for i in range(0, 500, 4)]  # 4 x 20 s: a fixed count that fits the longest
    plain_share = 1 - sum(lengths) / sum(padded(b, lengths) for b in plain)
    assert share < 0.1 < plain_share, (share, plain_share)


@pytest.mark.parametrize("world", [2, 3])
def test_each_process_takes_its_share_and_all_take_as_many(monkeypatch, world):
    lengths = [1.0 + (i % 17) for i in range(101)]
    shares = []
    for rank in range(world):
        sampler = BucketBatches(lengths, batch_seconds=40, seed=5, shard=True)
        monkeypatch.setattr(sampler, "_world", lambda rank=rank: (rank, world))
        shares.append(list(sampler))
        assert len(shares[-1]) == len(sampler)
    assert len({len(share) for share in shares}) == 1
    seen = [i for share in shares for batch in share for i in batch]
    assert set(seen) == set(range(len(lengths)))
    whole = BucketBatches(lengths, batch_seconds=40, seed=5).batches()
    assert len(seen) - len(lengths) == sum(map(len, whole[: len(shares[0]) * world - len(whole)]))  # repeats only


def test_an_utterance_longer_than_the_batch_seconds_is_one_line_naming_the_fix():
    with pytest.raises(AsrctlError, match=r"batch seconds 10 cannot hold the longest .*\(12\.0 s\).*--max-duration"):
        BucketBatches([3.0, 12.0], batch_seconds=10)


def test_the_recipe_caps_the_count_only_where_it_sets_batch_size():
    assert bucketing({"batch_size": 8}) is None
    assert bucketing({"batch_seconds": 120}) == {"batch_seconds": 120.0, "batch_size": None}
    assert bucketing({"batch_seconds": 120, "batch_size": 32, "buckets": 20}) == {
        "batch_seconds": 120.0, "batch_size": 32, "buckets": 20}


@settings(max_examples=100, deadline=None)
@given(small=st.integers(1, 40), large=st.integers(1, 400), weight=st.floats(0.05, 0.95),
       room=st.floats(min_value=1.0, max_value=4.0), buckets=st.integers(1, 12), seed=st.integers(0, 2**16),
       epoch=st.integers(0, 20))
def test_a_mix_takes_each_source_by_its_weight_within_the_bounds(small, large, weight, room, buckets, seed, epoch):
    rng = random.Random(seed)
    lengths = [rng.uniform(0.5, 20) for _ in range(small + large)]
    sources = [0] * small + [1] * large
    sampler = BucketBatches(lengths, batch_seconds=max(lengths) * room, buckets=buckets, seed=seed,
                            sources=sources, weights=[weight, 1 - weight])
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler) and all(padded(b, lengths) <= max(lengths) * room for b in batches)
    drawn = [i for batch in batches for i in batch]
    assert len(drawn) == small + large  # an epoch is as many utterances as there are
    # each source's share is its weight's, up to rounding in each bucket
    assert abs(sum(sources[i] == 0 for i in drawn) - weight * len(drawn)) <= buckets + 1


def test_over_many_epochs_the_mix_holds_and_each_source_is_seen_through_before_it_repeats():
    lengths = [1.0 + (i % 13) for i in range(330)]
    sources = [0] * 30 + [1] * 300  # 30 in-domain utterances at 0.7, 300 general ones at 0.3
    sampler = BucketBatches(lengths, batch_size=16, buckets=1, seed=1, sources=sources, weights=[0.7, 0.3])
    counts = [0, 0]
    seen_general: list[int] = []
    for epoch in range(40):
        sampler.set_epoch(epoch)
        drawn = [i for batch in sampler for i in batch]
        assert all(len(batch) <= 16 for batch in sampler)
        for i in drawn:
            counts[sources[i]] += 1
        seen_general += sorted(i for i in drawn if sources[i] == 1)
    assert counts[0] / sum(counts) == pytest.approx(0.7, abs=0.005)
    # 99 general utterances an epoch: none twice in the first 3 epochs, all 300 in the first 4
    assert len(set(seen_general[:297])) == 297 and len(set(seen_general[:396])) == 300
    again = BucketBatches(lengths, batch_size=16, buckets=1, seed=1, sources=sources, weights=[0.7, 0.3])
    again.set_epoch(39)
    sampler.set_epoch(39)
    assert list(again) == list(sampler)  # a resumed run's sampler, made anew, draws the same epoch
