"""The fixtures: `optimist_node` (one server per session, or per xdist worker),
`optimist` (its Elasticsearch client; the node reset after each test) and `optimist_faults`
(rules that last one test)."""

import pytest

from .node import start_node


@pytest.fixture(scope="session")
def optimist_node():
    """The running server (`OptimistNode`): URL, client, snapshots, faults, restarts."""
    node = start_node()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def optimist(optimist_node):
    """An `elasticsearch.Elasticsearch` on a server that is empty when the test starts."""
    yield optimist_node.client
    optimist_node.reset()


@pytest.fixture
def optimist_faults(optimist_node):
    """`add(action, match=None, **rule)` for rules that the end of the test deletes."""

    class Faults:
        def add(self, action, match=None, **rule):
            return optimist_node.add_fault(action, match, **rule)

        def listed(self):
            return optimist_node.faults()

    yield Faults()
    optimist_node.clear_faults()
