"""The official Python client (elasticsearch-py, 8.x or 9.x) against a live optimist server.

Run by `.ci/python-clients`, which installs each major version in a venv of its own and
starts the server: `python official_client.py http://127.0.0.1:PORT`. Every check is an
assert on what an application sees; the script exits non-zero on the first that fails.
"""

import sys

import elasticsearch
from elasticsearch import ConflictError, Elasticsearch, NotFoundError, helpers


def conflicts_raise_their_usual_error_and_carry_the_current_stamp(es):
    es.index(index="movies", id="1", document={"title": "Alien"})
    es.index(index="movies", id="1", document={"title": "Alien", "year": 1979})
    attempts = [
        lambda: es.index(index="movies", id="1", document={"t": 1}, if_seq_no=0, if_primary_term=1),
        lambda: es.create(index="movies", id="1", document={"t": 1}),
        lambda: es.update(index="movies", id="1", doc={"t": 1}, if_seq_no=0, if_primary_term=1),
        lambda: es.delete(index="movies", id="1", if_seq_no=0, if_primary_term=1),
    ]
    for attempt in attempts:
        try:
            attempt()
        except ConflictError as e:
            assert e.meta.status == 409, e.meta.status
            assert e.error == "version_conflict_engine_exception", e.error
            assert "version conflict" in e.message or "version conflict" in str(e), str(e)
            current = e.body["error"]["current"]
            assert current == {"found": True, "_version": 2, "_seq_no": 1, "_primary_term": 1}, current
        else:
            raise AssertionError("a stale write did not raise ConflictError")
    doc = es.get(index="movies", id="1")
    assert (doc["_seq_no"], doc["_version"]) == (1, 2), doc


def the_stamp_round_trips(es):
    doc = es.get(index="movies", id="1")
    written = es.index(
        index="movies",
        id="1",
        document={"title": "Alien", "year": 1979, "genre": "horror"},
        if_seq_no=doc["_seq_no"],
        if_primary_term=doc["_primary_term"],
    )
    assert written["result"] == "updated", written
    assert written["_seq_no"] == doc["_seq_no"] + 1, written


def bulk_conflicts_are_items(es):
    actions = [
        {"_op_type": "index", "_index": "movies", "_id": "2", "_source": {"title": "Aliens"}},
        {"_op_type": "create", "_index": "movies", "_id": "1", "_source": {"title": "stale"}},
    ]
    ok, errors = helpers.bulk(es, actions, raise_on_error=False)
    assert ok == 1, (ok, errors)
    (failed,) = errors
    error = failed["create"]["error"]
    assert failed["create"]["status"] == 409, failed
    assert error["type"] == "version_conflict_engine_exception", error
    assert error["current"]["found"] is True, error
    try:
        helpers.bulk(es, actions[1:])
    except helpers.BulkIndexError as e:
        assert e.errors[0]["create"]["status"] == 409, e.errors
    else:
        raise AssertionError("helpers.bulk did not raise on a conflicting item")


def missing_documents_raise_not_found(es):
    try:
        es.get(index="movies", id="nope")
    except NotFoundError as e:
        assert e.meta.status == 404, e.meta.status
    else:
        raise AssertionError("a missing document did not raise NotFoundError")


def main(url):
    es = Elasticsearch(url, request_timeout=10)
    info = es.info()
    assert info["version"]["number"].startswith("8."), info
    for check in [
        conflicts_raise_their_usual_error_and_carry_the_current_stamp,
        the_stamp_round_trips,
        bulk_conflicts_are_items,
        missing_documents_raise_not_found,
    ]:
        check(es)
        print(f"ok: {check.__name__}")
    es.indices.delete(index="movies")
    print(f"elasticsearch-py {elasticsearch.__versionstr__}: every check passed")


if __name__ == "__main__":
    main(sys.argv[1])
