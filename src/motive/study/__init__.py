"""A pairwise human-preference study of two models' videos (the paper's Table 2).

Protocol. Two generated folders (``motive.generate``'s layout) are paired by (prompt index, seed):
the same prompt and the same noise seed, so a pair differs only in the model. A rater opens the
invite link (it carries the study's random token; every request without it is refused with 403),
gives a name or id, and sees one pair at a time: the prompt as text, the two videos side by side
(looping, muted), and three buttons: left better, about the same, right better.

What is randomised, per rater and reproducibly from the study seed and the rater's id (so a reload,
or a restarted server, shows the same next pair): the order of the pairs, and which model is shown
on the left, balanced so that each model is on the left for half of the rater's pairs (±1). The
page never names the models; videos are fetched by pair id and screen side only, and the server
maps the side to the model.

What is stored (SQLite, WAL, each judgment committed before the next page is sent, so killing the
server loses nothing): the pairs (index, seed, prompt, category, both video paths), the study's
token, seed and model names, and one row per (rater, pair): the model shown on the left, the side
clicked, the choice mapped back to model A, model B or a tie, and the UTC time. A rater's first
judgment of a pair stands; a resubmission is ignored. A rater who comes back continues at their
first unjudged pair.

The report counts judgments (rater × pair) from model A's point of view: wins (A chosen), ties and
losses (B chosen), per prompt category and overall, each with its percentage and a 95% Wilson score
interval for that proportion (judgments treated as independent Bernoulli trials):
``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with z = 1.95996. Rater agreement uses
the pairs judged by two or more raters: pairwise percent agreement (per pair, the share of rater
pairs that gave the same outcome, averaged over pairs) and Fleiss' kappa over the three outcomes
(with per-pair rater counts allowed to differ: outcome shares pooled over all their judgments).
"""

from motive.study.records import (
    OUTCOMES,
    Study,
    StudyConfig,
    create_study,
    judged_pairs,
    load_study,
    rater_plan,
    record_judgment,
)
from motive.study.server import StudyHandler, StudyServer, make_server, serve
from motive.study.statistics import fleiss_kappa, report_markdown, study_report, wilson_interval

__all__ = [
    "OUTCOMES",
    "Study",
    "StudyConfig",
    "StudyHandler",
    "StudyServer",
    "create_study",
    "fleiss_kappa",
    "judged_pairs",
    "load_study",
    "make_server",
    "rater_plan",
    "record_judgment",
    "report_markdown",
    "serve",
    "study_report",
    "wilson_interval",
]
