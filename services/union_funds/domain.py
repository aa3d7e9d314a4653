"""The union funds domain (工会经费) in one import. Pure: no I/O, no clock (rules that need
"today" take it as an argument).

* ``periods``     — Period (a month, quarter or year), coverage of a period's months
* ``remittances`` — the tax bureau's records, the 2% rate, matching by credit code, batches
* ``subsidies``   — city finance's subsidies
* ``unions``      — the view of the union tree kept from membership's events
* ``shared.errors`` — DomainError, Conflict, NotFound, Forbidden (re-exported here)

Every error code is listed in ``docs/errors/union_funds.md``.
"""

from services.union_funds.periods import *  # noqa: F403
from services.union_funds.remittances import *  # noqa: F403
from services.union_funds.subsidies import *  # noqa: F403
from services.union_funds.unions import *  # noqa: F403
from shared.errors import Conflict as Conflict
from shared.errors import DomainError as DomainError
from shared.errors import Forbidden as Forbidden
from shared.errors import NotFound as NotFound
