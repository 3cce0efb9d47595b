"""Forms of the consortium editor. Limits and messages come from workflow.proposals, so the form and the
operation refuse the same input with the same words."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from workflow.callconfig import PARTNER_TYPE_LABELS, PARTNER_TYPES
from workflow.countries import all_countries
from workflow.paging import positive_int
from workflow.proposals import (
    ACRONYM_MAX,
    COST_CATEGORIES,
    COST_CATEGORY_LABELS,
    MAX_AMOUNT,
    MAX_DURATION_MONTHS,
)

OWN_FUNDING = "own"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _one_newline(value):
    """Browsers send a textarea's line breaks as CRLF; count and store them as one character each."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


class WholeEuros(StringField):
    """Whole euros, typed freely: "25000", "25 000", "25,000" and "€25,000" all mean 25000. Empty is 0.
    The typed text is shown again when it cannot be read, so nothing typed is lost."""

    def process_formdata(self, valuelist):
        raw = valuelist[0] if valuelist else ""
        cleaned = re.sub(r"[\s,'’_€\u00a0\u202f]", "", raw or "")
        if cleaned == "":
            self.data = 0
            return
        if re.fullmatch(r"-\d+", cleaned):
            self.data = None
            raise ValueError("an amount cannot be negative")
        if not re.fullmatch(r"\d+", cleaned):
            self.data = None
            raise ValueError("enter whole euros in digits, without cents, e.g. 25000")
        if len(cleaned) > len(str(MAX_AMOUNT)) or int(cleaned) > MAX_AMOUNT:
            self.data = None  # an absurd amount must not reach the totals
            raise ValueError(f"enter at most {MAX_AMOUNT:,} euros")
        self.data = int(cleaned)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data in (None, 0) else str(self.data)


class NewProposalForm(FlaskForm):
    # No maxlength in the page: a pasted, over-long acronym is refused with its length, never cut.
    acronym = StringField("Acronym", filters=[_strip], validators=[DataRequired(message="give the proposal an acronym")])
    title = StringField("Title (optional, you can add it later)", filters=[_strip])
    submit = SubmitField("Create proposal")

    def validate_acronym(self, field):
        if len(field.data or "") > ACRONYM_MAX:
            raise ValidationError(f"the acronym can have at most {ACRONYM_MAX} characters")


class TextsForm(FlaskForm):
    """The proposal's own fields. `problems` (from workflow.proposals.text_problems) is set by the view."""

    version = HiddenField()
    acronym = StringField("Acronym", filters=[_strip])
    title = StringField("Title", filters=[_strip])
    abstract = TextAreaField("Abstract", filters=[_one_newline], render_kw={"rows": 12})
    keywords = StringField("Keywords", filters=[_strip])
    topic = StringField("Topic", filters=[_strip])
    duration_months = IntegerField(
        "Duration (months)",
        validators=[Optional(), NumberRange(min=1, max=MAX_DURATION_MONTHS,
                                            message=f"give the duration as whole months from 1 to "
                                                    f"{MAX_DURATION_MONTHS}")],
        render_kw={"inputmode": "numeric"},
    )
    submit = SubmitField("Save draft")

    def changes(self) -> dict:
        return {"acronym": self.acronym.data or "", "title": self.title.data or "",
                "abstract": self.abstract.data or "", "keywords": self.keywords.data or "",
                "topic": self.topic.data or "", "duration_months": self.duration_months.data}


class PartnerForm(FlaskForm):
    version = HiddenField()  # the partner's version when the form was shown (see update_partner)
    organisation = StringField("Organisation", filters=[_strip], validators=[
        DataRequired(message="give the partner's organisation"), Length(max=300)])
    partner_type = SelectField("Type of organisation",
                               choices=[SelectChoice(t, PARTNER_TYPE_LABELS[t]) for t in PARTNER_TYPES],
                               validators=[InputRequired(message="choose the type of organisation")],
                               invalid_choice_message="choose the type of organisation")
    country = SelectField("Country", validators=[DataRequired(message="choose the partner's country")],
                          invalid_choice_message="choose the partner's country")
    region = StringField("Region", filters=[_strip], validators=[Length(max=120)])
    # Rendered by hand (grouped by country, "Own funding" first); its choices are the call's funders.
    funder = StringField("Funder")
    pi_name = StringField("PI name", filters=[_strip], validators=[
        DataRequired(message="give the name of the partner's principal investigator (PI)"), Length(max=200)])
    pi_email = EmailField("PI e-mail", filters=[_strip], validators=[
        DataRequired(message="give the PI's e-mail address"), Email(message="this is not an e-mail address"),
        Length(max=254)])
    budget_personnel = WholeEuros(COST_CATEGORY_LABELS["personnel"])
    budget_consumables = WholeEuros(COST_CATEGORY_LABELS["consumables"])
    budget_equipment = WholeEuros(COST_CATEGORY_LABELS["equipment"])
    budget_travel = WholeEuros(COST_CATEGORY_LABELS["travel"])
    budget_subcontracting = WholeEuros(COST_CATEGORY_LABELS["subcontracting"])
    budget_other = WholeEuros(COST_CATEGORY_LABELS["other"])
    submit = SubmitField("Save partner")

    def __init__(self, *args, funder_ids: set[int] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = [SelectChoice("", "Choose a country")] + [
            SelectChoice(code, name) for code, name in all_countries()]
        self._funder_ids = set(funder_ids)

    def validate_funder(self, field):
        value = (field.data or "").strip()
        if value in ("", OWN_FUNDING):
            return
        if positive_int(value) not in self._funder_ids:
            raise ValidationError("choose one of the call's funders, or Own funding")

    def budget_fields(self):
        return [getattr(self, f"budget_{c}") for c in COST_CATEGORIES]

    def budget(self) -> dict[str, int]:
        return {c: getattr(self, f"budget_{c}").data or 0 for c in COST_CATEGORIES}

    def total(self) -> int:
        return sum(v for v in self.budget().values() if isinstance(v, int))

    def funder_choice(self) -> tuple[int | None, bool]:
        value = (self.funder.data or "").strip()
        if value == OWN_FUNDING:
            return None, True
        return positive_int(value), False


class InviteForm(FlaskForm):
    action = HiddenField(default="invite")
    email = EmailField("E-mail address of the person to invite", filters=[_strip], validators=[
        DataRequired(message="give the e-mail address of the person to invite"),
        Email(message="this is not an e-mail address"), Length(max=254)])
    access = RadioField("Access", choices=[SelectChoice("edit", "View and edit"),
                                           SelectChoice("view", "View only (read-only)")],
                        default="edit", validators=[InputRequired(message="choose the access to give")])
    submit = SubmitField("Send invitation")


class ConfirmForm(FlaskForm):
    """A POST button with nothing to fill in (CSRF token only)."""

    submit = SubmitField("Confirm")
