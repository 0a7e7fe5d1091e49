"""Review cases: the caseworker queues, the case view and the decisions, split by job:

- :mod:`.access` — which role works which queue, the staff member's region (PIPL minimum
  necessary), the checks every read and decision goes through;
- :mod:`.queue` — filters, a page of cases with counts, neighbours, assignees;
- :mod:`.view` — one case for the case page (what opened it, photos, scores, history);
- :mod:`.decisions` — assign, approve, reject, home visit, suspected fraud (on a spot check the
  proposed suspension's approval also withdraws the confirmations under check), unfounded, a spot
  check's "the living pensioner", notes;
- :mod:`.enrollment_fixes` — fix photo, confirm duplicate, not a duplicate;
- :mod:`.visits` — home-visit tasks: listed, assigned to community workers, closed on site with a photo;
- :mod:`.refresh_templates` — "use as template" on a verification case, revoking a refresh template.

Other services open cases through :func:`lifecert.services.cases.open_case` with a typed payload
(:mod:`lifecert.domain.cases`); the case view reads the same type back, and each case type allows
only the decisions :func:`lifecert.domain.cases.decisions_for` lists. Every read of personal or
biometric data and every decision writes an audit event in the same transaction as the work it
records. Callers use ``from lifecert.services import review`` and the names below.
"""

from lifecert.domain.cases import Decision
from lifecert.services.review.access import (
    DEFAULT_KIND_ROLES,
    KIND_ROLES,
    MAX_CASE_NOTE,
    MAX_DECISION_NOTE,
    CaseStatus,
    get_case,
    in_scope,
    kinds_for,
    region_scope,
)
from lifecert.services.review.decisions import (
    add_note,
    approve,
    assign_to_me,
    close_unfounded,
    confirm_genuine,
    mark_suspected_fraud,
    reject,
    request_home_visit,
)
from lifecert.services.review.enrollment_fixes import confirm_duplicate, fix_photo, not_duplicate
from lifecert.services.review.queue import (
    QueueFilter,
    QueuePage,
    QueueRow,
    assignable_staff,
    list_queue,
    neighbours,
)
from lifecert.services.review.refresh_templates import (
    RefreshTemplateView,
    refresh_templates_of,
    revoke_template,
    use_as_template,
)
from lifecert.services.review.view import (
    CaseView,
    ConfirmationView,
    ExtractView,
    Hit,
    case_photo_shas,
    case_view,
    read_case_photo,
)
from lifecert.services.review.visits import list_visits
from lifecert.storage.models import ReviewCase

__all__ = [
    "DEFAULT_KIND_ROLES", "KIND_ROLES", "MAX_CASE_NOTE", "MAX_DECISION_NOTE",
    "CaseStatus", "CaseView", "ConfirmationView", "Decision", "ExtractView", "Hit",
    "QueueFilter", "QueuePage", "QueueRow", "RefreshTemplateView", "ReviewCase", "add_note", "approve", "assign_to_me",
    "assignable_staff", "case_photo_shas", "case_view", "close_unfounded", "confirm_duplicate", "confirm_genuine",
    "fix_photo", "get_case",
    "in_scope", "kinds_for", "list_queue", "list_visits", "mark_suspected_fraud", "neighbours", "not_duplicate",
    "read_case_photo", "refresh_templates_of", "region_scope", "reject", "request_home_visit", "revoke_template",
    "use_as_template",
]
