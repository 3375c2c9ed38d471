import pytest

from brainbench.client import ChatClient, Endpoint
from brainbench.testing import FakeServer


@pytest.fixture
def fake():
    """Factory: fake(brain, models=...) -> started FakeServer (stopped after the test)."""
    servers = []

    def make(brain, **kw):
        srv = FakeServer(brain, **kw).__enter__()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.__exit__(None, None, None)


def client_for(srv, model="fake-model", **kw):
    kw.setdefault("backoff", 0.01)
    return ChatClient(Endpoint(srv.base_url, model), **kw)
