"""Reviews: reviewers, conflicts, assignment, scores, ranking, panel (imports workflow, never webapp).

Importing the package plugs the reviewer facts into workflow.access and registers the lifecycle guards
(reviews.plugin), so every process that uses reviews/ has them.

    models        the tables
    pool          invitations, profiles, the confidentiality declaration
    conflicts     declared and detected conflicts, overrides
    text          expertise matching (keywords, TF-IDF), pure
    matching      min-cost flow and greedy assignment, pure
    assignment    manual assignment; automatic assignment previewed (kept for its pages), accepted or discarded
    scoring       the review form, drafts, submission, the lock, reminders
    progress      the call's review figures for the secretariat's dashboard (aggregate SQL)
    visibility    which reviews a person sees; releasing them to applicants (with release)
    aggregation   means, weighted totals, thresholds, disagreement; the panel's consensus
    ranking       the ranking list, tie-breaks, approval; pre-stage invitations
    exports       rows for CSV/XLSX/PDF
    policy        the access rules of the review actions
"""

from reviews import plugin as _plugin

_plugin.install()
