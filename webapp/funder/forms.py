"""Forms of the eligibility step: one verdict (funder officers and the secretariat's formal check), and one
verdict on several partners. The domain operation validates the verdict and
the reason and names the field; these forms only bound the input."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

VERDICTS = [SelectChoice("eligible", "Eligible"), SelectChoice("ineligible", "Not eligible")]
REASON_MAX = 2000


class SignOffForm(FlaskForm):
    verdict = RadioField("Verdict", choices=VERDICTS, validate_choice=False)
    reason = TextAreaField("Reason (required for not eligible)",
                           validators=[Optional(), Length(max=REASON_MAX, message=f"at most {REASON_MAX} characters")])
    version = HiddenField()
    submit = SubmitField("Save verdict")

    def expected_version(self) -> int | None:
        try:
            return int(self.version.data)
        except (TypeError, ValueError):
            return None


class BulkSignOffForm(FlaskForm):
    verdict = RadioField("Verdict for the selected partners", choices=VERDICTS, validate_choice=False)
    reason = TextAreaField("Reason (required for not eligible)",
                           validators=[Optional(), Length(max=REASON_MAX, message=f"at most {REASON_MAX} characters")])
    submit = SubmitField("Sign off the selected partners")

