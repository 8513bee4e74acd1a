"""The plugin's own tests, against the real binary, with elasticsearch-py unchanged: what an
application's test suite does with it."""

import pytest
from elasticsearch import ConflictError, Elasticsearch, helpers
from elasticsearch import ConnectionError as EsConnectionError


def test_a_test_starts_empty_and_writes_with_stamps(optimist):
    assert optimist.indices.exists(index="orders").body is False
    written = optimist.index(index="orders", id="1", document={"qty": 1})
    assert (written["_seq_no"], written["_primary_term"], written["_version"]) == (0, 1, 1)
    assert optimist.get(index="orders", id="1")["_source"] == {"qty": 1}


@pytest.mark.parametrize("n", range(200))
def test_each_of_many_tests_sees_only_its_own_writes(optimist, n):
    helpers.bulk(optimist, ({"_index": "t", "_id": str(i), "n": n} for i in range(5)))
    assert optimist.count(index="t")["count"] == 5
    assert optimist.get(index="t", id="0")["_source"] == {"n": n}


@pytest.fixture(scope="module")
def seeded(optimist_node):
    optimist_node.reset()
    helpers.bulk(optimist_node.client, ({"_index": "stock", "_id": str(i), "qty": i} for i in range(100)))
    optimist_node.snapshot("seeded")
    yield "seeded"
    optimist_node.reset()


@pytest.mark.parametrize("round", range(3))
def test_a_restored_snapshot_gives_the_same_stamps_every_time(optimist_node, optimist, seeded, round):
    optimist_node.restore(seeded)
    before = optimist.get(index="stock", id="7")
    written = optimist.index(index="stock", id="7", document={"qty": 0})
    # The same write after every restore gets the same stamp.
    assert (written["_seq_no"], written["_version"]) == (100, before["_version"] + 1)


def test_an_update_meets_injected_conflicts_then_succeeds(optimist_node, optimist):
    optimist.index(index="orders", id="42", document={"qty": 1})
    with optimist_node.fault(match={"op": "update", "id": "42"},
                             action={"type": "version_conflict"}, times=2) as fault_id:
        for _ in range(2):
            with pytest.raises(ConflictError) as raised:
                optimist.update(index="orders", id="42", doc={"qty": 2}, retry_on_conflict=0)
            assert raised.value.body["error"]["type"] == "version_conflict_engine_exception"
        optimist.update(index="orders", id="42", doc={"qty": 2}, retry_on_conflict=0)
        rule = next(r for r in optimist_node.faults() if r["id"] == fault_id)
        assert (rule["fired"], rule["remaining"]) == (2, 0)
    assert optimist.get(index="orders", id="42")["_source"] == {"qty": 2}


def add_stock(es, item, amount):
    """Application code under test: read, change, write on the stamp read; again on 409."""
    for attempt in range(1, 10):
        doc = es.get(index="orders", id=item)
        qty = doc["_source"]["qty"] + amount
        try:
            es.index(index="orders", id=item, document={"qty": qty},
                     if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"])
            return attempt
        except ConflictError:
            continue
    raise AssertionError("gave up")


def test_an_application_retry_loop_survives_injected_conflicts(optimist_faults, optimist):
    optimist.index(index="orders", id="1", document={"qty": 10})
    optimist_faults.add({"type": "version_conflict"}, {"op": "index", "id": "1"}, times=3)
    assert add_stock(optimist, "1", 5) == 4
    # Each injected conflict was a real write by another writer, which changed nothing.
    assert optimist.get(index="orders", id="1")["_source"] == {"qty": 15}


def test_streaming_bulk_retries_only_the_items_refused_with_429(optimist_faults, optimist):
    optimist_faults.add({"type": "status", "status": 429, "scope": "item"}, {"id": "3"}, times=2)
    actions = [{"_index": "orders", "_id": str(i), "qty": i} for i in range(10)]
    # es-py retries 429 items only when it does not raise on the first error it meets.
    bulk = helpers.streaming_bulk(
        optimist, actions, max_retries=2, initial_backoff=0, raise_on_error=False
    )
    results = list(bulk)
    assert [ok for ok, _ in results] == [True] * 10
    assert optimist.count(index="orders")["count"] == 10
    rule = optimist_faults.listed()[0]
    assert rule["fired"] == 2


def test_without_retries_only_the_refused_item_is_reported(optimist_faults, optimist):
    optimist_faults.add({"type": "status", "status": 429, "scope": "item"}, {"id": "3"})
    actions = [{"_index": "orders", "_id": str(i), "qty": i} for i in range(10)]
    with pytest.raises(helpers.BulkIndexError) as raised:
        helpers.bulk(optimist, actions)
    failed = raised.value.errors
    assert [e["index"]["_id"] for e in failed] == ["3"]
    assert failed[0]["index"]["status"] == 429


def test_a_lost_response_leaves_the_write_committed(optimist_node, optimist_faults, optimist):
    optimist_faults.add({"type": "response_lost"}, {"op": "create"})
    no_retries = Elasticsearch(optimist_node.url, max_retries=0)
    with pytest.raises(EsConnectionError):
        no_retries.create(index="orders", id="1", document={"qty": 1})
    assert optimist.get(index="orders", id="1")["_version"] == 1
    with pytest.raises(ConflictError):
        no_retries.create(index="orders", id="1", document={"qty": 1})
    no_retries.close()


def test_faults_scoped_by_opaque_id_touch_only_that_test(optimist_faults, optimist):
    optimist_faults.add({"type": "status", "status": 503}, {"opaque_id": "test-17"}, times=None)
    optimist.index(index="orders", id="1", document={})
    mine = optimist.options(opaque_id="test-17", max_retries=0)
    with pytest.raises(Exception) as raised:
        mine.get(index="orders", id="1")
    assert getattr(raised.value, "status_code", None) == 503 or "503" in str(raised.value)
    assert optimist.options(opaque_id="test-18").get(index="orders", id="1")["found"]


def test_a_restart_bumps_the_term_and_an_old_stamp_still_holds(optimist_node, optimist):
    written = optimist.index(index="orders", id="1", document={"qty": 1})
    assert optimist_node.restart(["orders"])["primary_terms"] == {"orders": [2]}
    again = optimist.index(index="orders", id="1", document={"qty": 2},
                           if_seq_no=written["_seq_no"], if_primary_term=1)
    assert again["_primary_term"] == 2


def test_index_blocks_refuse_as_a_real_cluster_does(optimist):
    optimist.index(index="orders", id="1", document={})
    optimist.indices.put_settings(index="orders", settings={"index.blocks.write": True})
    with pytest.raises(Exception) as raised:
        optimist.index(index="orders", id="2", document={})
    assert getattr(raised.value, "status_code", None) == 403
    assert raised.value.body["error"]["type"] == "cluster_block_exception"
