"""Forms of the reviewer's pages. They only bound the input; the reviews operations validate it and name
the field a refusal belongs to (shown next to it)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from reviews.conflicts import REASON_MAX
from reviews.scoring import COMMENT_MAX, RECOMMENDATIONS, SCORE_VALUES
from workflow.accounts import MAX_PASSWORD_LENGTH
from workflow.countries import all_countries

NOT_SCORED = ""


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


class FirstPasswordForm(FlaskForm):
    """A person invited without an account chooses the password of the account made for them."""

    password = PasswordField("Choose a password", validators=[Length(max=MAX_PASSWORD_LENGTH)],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat the password", validators=[Length(max=MAX_PASSWORD_LENGTH)],
                            render_kw={"autocomplete": "new-password"})


class DeclineForm(FlaskForm):
    reason = TextAreaField("Reason (optional; the secretariat reads it)",
                           validators=[Optional(), Length(max=2000, message="at most 2,000 characters")])


class DeclarationForm(FlaskForm):
    confirm = BooleanField("I have read the declaration above and accept it")


class ProfileForm(FlaskForm):
    keywords = TextAreaField("Expertise keywords", validators=[Length(max=5000)],
                             description="Separate them with semicolons, commas or new lines, "
                                         "e.g. pharmacogenomics; oncology; health economics")
    organisation = StringField("Organisation", validators=[Length(max=300)])
    country = SelectField("Country", validate_choice=False)
    email_domain = StringField("E-mail domain of your organisation (optional)", validators=[Length(max=254)],
                               description="e.g. charite.de; used to detect conflicts with partners of the same "
                                           "institution")

    def set_countries(self) -> None:
        self.country.choices = [SelectChoice("", "— choose —")] + [SelectChoice(c, n) for c, n in all_countries()]


class ConflictForm(FlaskForm):
    reason = TextAreaField("What is the conflict?", validators=[
        Length(max=REASON_MAX, message=f"at most {REASON_MAX:,} characters")])


def _trim(value: float) -> str:
    return f"{value:g}"


def score_choices(labels: dict[str, str]) -> list[SelectChoice]:
    """"" (not scored yet), then 0, 0.5, ... 5, each with the call's words for the scale."""
    out = [SelectChoice(NOT_SCORED, "— not scored yet —")]
    for value in SCORE_VALUES:
        key = _trim(value)
        if key in labels:
            out.append(SelectChoice(key, f"{key} — {labels[key]}"))
        else:
            low, high = labels.get(_trim(value - 0.5)), labels.get(_trim(value + 0.5))
            out.append(SelectChoice(key, f"{key} — between {low} and {high}" if low and high else key))
    return out


def review_form_class(criteria):
    """A form with a score select and a comment per criterion of the call, and the recommendation."""

    class ReviewForm(FlaskForm):
        recommendation = SelectField("Your recommendation", validate_choice=False,
                                     choices=[SelectChoice("", "— choose —")]
                                     + [SelectChoice(k, v) for k, v in RECOMMENDATIONS.items()])
        version = HiddenField()

        def expected_version(self) -> int | None:
            try:
                return int(self.version.data)
            except (TypeError, ValueError):
                return None

    for c in criteria:
        setattr(ReviewForm, f"score_{c.key}", SelectField(
            f"Score for {c.name}", choices=score_choices(c.labels), validate_choice=False))
        setattr(ReviewForm, f"comment_{c.key}", TextAreaField(
            f"Comment on {c.name}",
            validators=[Length(max=COMMENT_MAX, message=f"a comment has at most {COMMENT_MAX:,} characters")]))
    return ReviewForm
