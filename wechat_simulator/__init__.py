"""A local simulator of the WeChat Official Account API (tokens, template and subscription
messages, quotas, delivery reports), for tests, the run command and the benchmark.

Run it with ``python -m wechat_simulator``, or build it in-process with :func:`create_app`.
"""

from .app import Simulator, create_app
from .calls import WeChatCalls
from .clock import ManualClock, SimClock
from .config import SimulatorConfig, TemplateSpec, UserSpec
from .events import CallbackEvent
from .state import SimulatorState

__all__ = [
    "CallbackEvent",
    "ManualClock",
    "SimClock",
    "Simulator",
    "SimulatorConfig",
    "SimulatorState",
    "TemplateSpec",
    "UserSpec",
    "WeChatCalls",
    "create_app",
]
