"""Forms of the funding decision and the letters. They bound the input; the operations validate it and name
the field of any refusal, which the page shows next to that field."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, SelectField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, StopValidation

from workflow.funding_ops import MAX_INCREASE, MAX_TEXT

_TEXT = Length(max=MAX_TEXT, message=f"keep it under {MAX_TEXT:,} characters")
_WHOLE_EUROS = "give a whole number of euros, without separators (e.g. 150000)"


class EuroField(IntegerField):
    """Whole euros; accepts "200,000", "200 000" and "€200000" as people type them."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = re.sub(r"[\s,€_]", "", valuelist[0] or "").replace("\u202f", "")
        if raw == "":
            self.data = None
            return
        try:
            self.data = int(raw)
        except ValueError:
            self.data = None
            raise ValueError(_WHOLE_EUROS) from None

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()  # one message: the one saying how to write the amount


class _Versioned:
    version = HiddenField()

    def expected_version(self) -> int | None:
        try:
            return int(self.version.data)
        except (TypeError, ValueError):
            return None


class IncreaseForm(FlaskForm):
    amount = EuroField("Increase (EUR, whole euros)", validators=[
        InputRequired(message="give the increase in whole euros"),
        NumberRange(min=1, max=MAX_INCREASE, message="an increase must be more than €0 and plausible")],
        render_kw={"inputmode": "numeric", "autocomplete": "off"})
    reason = TextAreaField("Reason (e.g. the board decision)", validators=[Optional(), _TEXT])
    submit = SubmitField("Record the increase")


class WhatIfBase(FlaskForm):
    """Per-funder extra amounts; fields are added per call (see what_if_form)."""

    class Meta:
        csrf = False  # a GET form: nothing is saved


def what_if_form(funders, formdata):
    """A form with one optional "extra for <funder>" field per funder of the call."""

    class WhatIfForm(WhatIfBase):
        pass

    for f in funders:
        setattr(WhatIfForm, f"extra_{f.funder_id}", EuroField(
            f"Extra for {f.acronym} (EUR)", validators=[
                Optional(), NumberRange(min=0, max=MAX_INCREASE, message="give 0 or more whole euros")],
            render_kw={"inputmode": "numeric", "autocomplete": "off"}))
    form = WhatIfForm(formdata=formdata)
    for f in funders:
        getattr(form, f"extra_{f.funder_id}").funder = f
    return form


class ApproveForm(FlaskForm):
    note = TextAreaField("Where the steering committee approved the list", validators=[Optional(), _TEXT],
                         description="For example: CSC meeting of 30 September 2030, minutes item 4.")
    fingerprint = HiddenField()
    submit = SubmitField("Record the approval")


class RecomputeForm(FlaskForm):
    note = TextAreaField("Why the list is recomputed", validators=[Optional(), _TEXT])
    submit = SubmitField("Recompute the funding list")


DECISIONS = [SelectChoice("confirm", "Confirm the funding"), SelectChoice("decline", "Decline the funding")]


class ConfirmationForm(_Versioned, FlaskForm):
    decision = RadioField("Decision", choices=DECISIONS, validate_choice=False)
    reason = TextAreaField("Reason (required to decline)", validators=[Optional(), _TEXT])
    submit = SubmitField("Save the decision")


class TemplateForm(_Versioned, FlaskForm):
    source = TextAreaField("Letter body (Jinja template)", render_kw={"rows": 22, "spellcheck": "false"})
    sample = SelectField("Preview for", validate_choice=False)
    preview = SubmitField("Preview")
    preview_pdf = SubmitField("Preview as PDF")
    save = SubmitField("Save the template")
    reset = SubmitField("Reset to the default")


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token (and what the page showed) travels."""

    fingerprint = HiddenField()
