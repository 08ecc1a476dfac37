"""The pipeline's memos keep what the next moments use again, and a bounded amount of it."""

from controller.model.memo import ByIdentity, Recent


def test_recent_keeps_a_key_used_again_within_size_others_and_at_most_twice_size():
    memo: Recent[int, str] = Recent(4)
    for k in range(4):
        memo.put(k, str(k))
    memo.put(4, "4")  # the first four are the old generation now
    assert memo.get(0) == "0"  # used again: young again
    for k in range(5, 9):
        memo.put(k, str(k))
    assert memo.get(0) == "0" and memo.get(1) is None  # 1 was not used again: dropped with its generation
    assert len(memo.young) + len(memo.old) <= 8
    memo.clear()
    assert memo.get(0) is None


def test_by_identity_tells_equal_objects_apart():
    made = []
    memo = ByIdentity(lambda t: made.append(t) or len(made), 2)
    a, b = (1, 2), tuple([1, 2])
    assert memo(a) == memo(a) == 1 and memo(b) == 2 and a == b and a is not b
