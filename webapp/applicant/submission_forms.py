"""Forms of the documents, submission, withdrawal, full-proposal and rebuttal pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, SelectChoice, SelectField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from workflow.callconfig import DOCUMENT_KINDS
from workflow.documents import KIND_LABELS
from workflow.paging import positive_int

NO_PARTNER = "The whole proposal (no partner)"
VERSION_MESSAGE = "this form is out of date; reload the page and try again"


class _Versioned(FlaskForm):
    """Every state-changing form carries the proposal version the person saw."""

    version = HiddenField(validators=[InputRequired(message=VERSION_MESSAGE),
                                      Regexp(r"^\d{1,9}$", message=VERSION_MESSAGE)])

    @property
    def expected_version(self) -> int | None:
        value = (self.version.data or "").strip()
        return positive_int(value)


class UploadForm(FlaskForm):
    kind = SelectField("Document type", choices=[SelectChoice(k, KIND_LABELS[k]) for k in DOCUMENT_KINDS],
                       validators=[DataRequired(message="choose the type of document")])
    partner = SelectField("Partner", choices=[SelectChoice("", NO_PARTNER)], validate_choice=False)
    file = FileField("PDF file", validators=[FileRequired(message="choose a PDF file to upload")])
    submit = SubmitField("Upload")

    def set_partners(self, partners) -> None:
        self.partner.choices = [SelectChoice("", NO_PARTNER)] + [
            SelectChoice(str(p.id), f"Partner {p.position}: {p.organisation} ({p.pi_name})") for p in partners
        ]

    @property
    def partner_id(self) -> int | None:
        return positive_int(self.partner.data)


class SubmitForm(_Versioned):
    confirm = BooleanField(
        "I confirm that the consortium agrees to submit this proposal and that its content is complete and "
        "correct.",
    )
    submit = SubmitField("Submit")


class ReopenForm(_Versioned):
    submit = SubmitField("Reopen to make changes")


class StartFullForm(_Versioned):
    submit = SubmitField("Start the full proposal")


class WithdrawForm(_Versioned):
    reason = TextAreaField("Reason for withdrawing", validators=[
        DataRequired(message="say why the proposal is withdrawn"),
        Length(max=2000, message="at most 2,000 characters"),
    ])
    confirm = BooleanField("I confirm that the consortium withdraws this proposal. This cannot be undone.")
    submit = SubmitField("Withdraw the proposal")


class RebuttalForm(FlaskForm):
    text = TextAreaField("Your rebuttal", validators=[DataRequired(message="write your rebuttal")])
    submit = SubmitField("Submit the rebuttal")
