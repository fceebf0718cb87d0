"""Model-based tests of the delivery core: every interleaving keeps every socket's run exact."""

from __future__ import annotations

from hypothesis import settings

from server.delivery.feed import ProjectFeed
from server.delivery.stream import JoinedStream
from tests.delivery.model import DeliveryModel


class Delivery(DeliveryModel):
    """Today's feed and stream in the model of tests/delivery/model.py."""

    make_feed = staticmethod(lambda: ProjectFeed[str]())
    make_stream = staticmethod(lambda held: JoinedStream[str](max_held=held))


# Random runs of this model on the logic the core replaced failed after 12 to
# 697 examples (tests/delivery/test_legacy.py): 1,500 finds such a defect.
MODEL_EXAMPLES = 1500

Delivery.TestCase.settings = settings(
    max_examples=MODEL_EXAMPLES, stateful_step_count=60, deadline=None
)
TestDelivery = Delivery.TestCase
