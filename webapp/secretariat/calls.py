"""The secretariat's console: the calls a person runs, creating a call (an uploaded TOML definition or a
short form over a shipped template), the call's page with its stages (open now, close), its settings
(validated as a whole definition, refused while the call's phase forbids them), replacing the definition
by upload, and the definition as TOML."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from webapp.auth import actor
from webapp.db import commit, db
from webapp.secretariat import bp
from webapp.views import allow, get_or_404, refuse
from workflow import console
from workflow.callconfig import CallDef, CallDefinitionError, load_call_file
from workflow.errors import DomainError
from workflow.models import Call
from workflow.timefmt import format_instant

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


def confirmed() -> bool:
    """Whether a ConfirmForm post is good to act on; if not (a stale or missing CSRF token), says so."""
    if ConfirmForm().validate_on_submit():
        return True
    flash("The form expired; nothing was changed. Try again.", "danger")
    return False


def place_problems(problems: list[tuple[str, str]], fields: dict) -> list[tuple[str, str]]:
    """Put each (key, why) next to its form field when the form has one; every problem stays in the list
    shown above the form, so nothing is lost and each names its key."""
    for key, why in problems:
        target = fields.get(key)
        if target is None:
            # "stages[0]" problems about the stage as a whole go to its deadline field
            target = fields.get(f"{key}.deadline")
        if target is not None:
            target.errors = [*list(target.errors or []), f"{key}: {why}"]
    return problems


def fresh(call_id: int) -> Call:
    """The call after a rollback, with its parsed settings re-read from the stored definition."""
    call = db().get(Call, call_id)
    call.__dict__.pop("settings", None)
    return call


def _console_call(call_id: int) -> Call:
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    return call


# ---------------------------------------------------------------------------------------------------------
# Home: the calls this person runs


@bp.get("/")
def console_home():
    me = actor()
    if me is None:
        abort(401)
    calls = console.calls_of(db(), me)
    if not calls and not me.is_admin:
        abort(403, description="only a call secretariat or an administrator can use the console")
    return render_template("secretariat/console_home.html", calls=calls,
                           statuses={c.id: console.stage_statuses(c) for c in calls}, is_admin=me.is_admin)


# ---------------------------------------------------------------------------------------------------------
# Creating a call


class UploadForm(FlaskForm):
    definition = FileField("Call definition (TOML file)")
    submit = SubmitField("Upload and create the call")


class NewCallForm(FlaskForm):
    template = SelectField("Start from the rules, criteria and funders of", validate_choice=False)
    code = StringField("Code", validators=[InputRequired("enter a code"), Length(max=62)],
                       description="lower-case letters, digits and hyphens, e.g. eppermed-jtc2026")
    title = StringField("Title", validators=[InputRequired("enter a title"), Length(max=300)])
    time_zone = SelectField("Time zone", validate_choice=False, default="Europe/Brussels")
    two_stage = BooleanField("Two stages (pre-proposal, then full proposal)", default=True)
    pre_opens = DateTimeLocalField("Pre-proposal stage opens", format=DATETIME_FORMAT, validators=[Optional()])
    pre_deadline = DateTimeLocalField("Pre-proposal deadline", format=DATETIME_FORMAT, validators=[Optional()])
    full_opens = DateTimeLocalField("Full-proposal stage opens", format=DATETIME_FORMAT, validators=[Optional()])
    full_deadline = DateTimeLocalField("Full-proposal deadline", format=DATETIME_FORMAT, validators=[Optional()])
    submit = SubmitField("Create the call")


def _new_forms(upload=None, form=None):
    upload = upload or UploadForm(prefix="upload")
    form = form or NewCallForm(prefix="new")
    form.template.choices = [(name, name) for name in console.shipped_definitions()]
    form.time_zone.choices = [(z, z) for z in ZONES]
    return upload, form


def _new_page(upload, form, problems=(), code=200):
    return render_template("secretariat/call_new.html", upload=upload, form=form, problems=list(problems)), code


def _admin_only():
    """Administrators only (creating a call, every call's secretariat): 401 when anonymous, else 403."""
    if actor() is None:
        abort(401)
    allow("admin")


def _uploaded(field: FileField) -> tuple[bytes, str]:
    """The bytes of the file in an upload field (none when nothing was sent) and the name to call it by."""
    file = field.data
    raw = file.read() if file is not None and hasattr(file, "read") else b""
    return raw, getattr(file, "filename", None) or "uploaded file"


def _upload_refused(field: FileField, err: CallDefinitionError, message: str) -> list[tuple[str, str]]:
    """An uploaded definition's problems, listed below the form; the field says `message` and how many."""
    problems = err.problems
    field.errors = [f"{message}: {len(problems)} problem{'s' if len(problems) != 1 else ''}, listed below"]
    return problems


@bp.get("/calls/new")
def call_new():
    _admin_only()
    return _new_page(*_new_forms())


@bp.post("/calls/new/upload")
def call_new_upload():
    _admin_only()
    upload, form = _new_forms()
    problems: list = []
    if upload.validate_on_submit():
        raw, name = _uploaded(upload.definition)
        try:
            definition = console.definition_from_toml(raw, name)
            call = console.create_call(db(), actor(), definition)
            commit()
        except CallDefinitionError as err:
            db().rollback()
            problems = _upload_refused(upload.definition, err, f"{name} is not a valid call definition")
        except DomainError as err:
            refuse(upload, err)
        else:
            flash(f"The call “{call.title}” was created from {name}.", "success")
            return redirect(url_for(".call_home", call_id=call.id))
    return _new_page(upload, form, problems, 422)


@bp.post("/calls/new/form")
def call_new_form():
    _admin_only()
    upload, form = _new_forms()
    problems: list = []
    if form.validate_on_submit():
        shipped = console.shipped_definitions()
        path = shipped.get(form.template.data)
        if path is None:
            form.template.errors = ["choose a template"]
        else:
            stages = ([("pre", form.pre_opens.data, form.pre_deadline.data)] if form.two_stage.data else []) + [
                ("full", form.full_opens.data, form.full_deadline.data)]
            fields = {"code": form.code, "title": form.title, "time_zone": form.time_zone}
            if form.two_stage.data:
                fields.update({"stages[0].opens": form.pre_opens, "stages[0].deadline": form.pre_deadline,
                               "stages[1].opens": form.full_opens, "stages[1].deadline": form.full_deadline})
            else:
                fields.update({"stages[0].opens": form.full_opens, "stages[0].deadline": form.full_deadline})
            try:
                definition = console.from_template(load_call_file(path), code=form.code.data, title=form.title.data,
                                                   time_zone=form.time_zone.data, stages=stages)
                call = console.create_call(db(), actor(), definition)
                commit()
            except CallDefinitionError as err:
                db().rollback()
                problems = place_problems(err.problems, fields)
            except DomainError as err:
                refuse(form, err)
            else:
                flash(f"The call “{call.title}” was created from the {form.template.data} template.", "success")
                return redirect(url_for(".call_home", call_id=call.id))
    return _new_page(upload, form, problems, 422)


# ---------------------------------------------------------------------------------------------------------
# One call: its page, stages, definition


@bp.get("/calls/<int:call_id>/")
def call_home(call_id: int):
    call = _console_call(call_id)
    return render_template("secretariat/call_home.html", call=call, stages=console.stage_statuses(call),
                           counts=console.state_counts(db(), call))


@bp.get("/calls/<int:call_id>/definition.toml")
def definition_toml(call_id: int):
    call = _console_call(call_id)
    name = re.sub(r"[^a-z0-9-]+", "-", call.code)
    return Response(console.to_toml(call.settings), mimetype="application/toml",
                    headers={"Content-Disposition": f'attachment; filename="{name}.toml"',
                             "Cache-Control": "no-store"})


class StageForm(Form):
    opens = DateTimeLocalField("Opens", format=DATETIME_FORMAT, validators=[InputRequired("enter a date and time")])
    deadline = DateTimeLocalField("Deadline", format=DATETIME_FORMAT,
                                  validators=[InputRequired("enter a date and time")])
    review_deadline = DateTimeLocalField("Reviews due", format=DATETIME_FORMAT, validators=[Optional()])


class FunderForm(Form):
    committed_budget = IntegerField("Committed budget (EUR)", validators=[
        InputRequired("enter the committed budget in whole euros"), NumberRange(min=0, message="cannot be negative")])
    max_per_partner = IntegerField("Cap per partner (EUR)", validators=[
        Optional(), NumberRange(min=0, message="cannot be negative")])
    max_per_project = IntegerField("Cap per project (EUR)", validators=[
        Optional(), NumberRange(min=0, message="cannot be negative")])


class SettingsForm(FlaskForm):
    title = StringField("Title", validators=[InputRequired("enter a title"), Length(max=300)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=20_000)])
    stages = FieldList(FormField(StageForm))
    funders = FieldList(FormField(FunderForm))
    reason = StringField("Why (kept in the audit log)", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Save the settings")


class ReplaceForm(FlaskForm):
    definition = FileField("New call definition (TOML file)")
    reason = StringField("Why (kept in the audit log)", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Replace the definition")


def _settings_form(call: Call, formdata=None) -> SettingsForm:
    s = call.settings
    data = {
        "title": s.title, "description": s.description,
        "stages": [{"opens": st.opens, "deadline": st.deadline, "review_deadline": st.review_deadline}
                   for st in s.stages],
        "funders": [{"committed_budget": f.committed_budget, "max_per_partner": f.max_per_partner,
                     "max_per_project": f.max_per_project} for f in s.funders],
    }
    if formdata is None:
        return SettingsForm(data=data)
    form = SettingsForm(formdata=formdata)
    # The lists have as many entries as the call has stages and funders, whatever was posted.
    while len(form.stages) < len(s.stages):
        form.stages.append_entry(data["stages"][len(form.stages)])
    while len(form.funders) < len(s.funders):
        form.funders.append_entry(data["funders"][len(form.funders)])
    # Rows beyond the call's stages and funders (a crafted post) are dropped, never rendered.
    while len(form.stages) > len(s.stages):
        form.stages.pop_entry()
    while len(form.funders) > len(s.funders):
        form.funders.pop_entry()
    return form


def _settings_fields(form: SettingsForm, definition: CallDef) -> dict:
    fields = {"title": form.title, "description": form.description}
    for i, sub in enumerate(form.stages):
        fields[f"stages[{i}].opens"] = sub.opens
        fields[f"stages[{i}].deadline"] = sub.deadline
        fields[f"stages[{i}].review_deadline"] = sub.review_deadline
    for i, sub in enumerate(form.funders):
        for attr in ("committed_budget", "max_per_partner", "max_per_project"):
            fields[f"funders[{i}].{attr}"] = getattr(sub, attr)
    return fields


def _settings_page(call: Call, form: SettingsForm, replace: ReplaceForm | None = None, problems=(), code=200):
    return render_template("secretariat/call_settings.html", call=call, s=call.settings, form=form,
                           replace=replace or ReplaceForm(prefix="replace"), problems=list(problems),
                           stages=console.stage_statuses(call)), code


@bp.get("/calls/<int:call_id>/settings")
def call_settings(call_id: int):
    call = _console_call(call_id)
    return _settings_page(call, _settings_form(call))


@bp.post("/calls/<int:call_id>/settings")
def call_settings_post(call_id: int):
    call = _console_call(call_id)
    form = _settings_form(call, request.form)
    problems: list = []
    if form.validate_on_submit():
        s = call.settings
        stages = {st.kind: (form.stages[i].opens.data, form.stages[i].deadline.data,
                            form.stages[i].review_deadline.data) for i, st in enumerate(s.stages)}
        funders = {f.acronym: {"committed_budget": form.funders[i].committed_budget.data,
                               "max_per_partner": form.funders[i].max_per_partner.data,
                               "max_per_project": form.funders[i].max_per_project.data}
                   for i, f in enumerate(s.funders)}
        data = console.apply_settings(call, title=form.title.data, description=form.description.data or "",
                                      stages=stages, funders=funders)
        try:
            result = console.update_definition(db(), actor(), call, data, reason=form.reason.data or None)
            commit()
        except CallDefinitionError as err:
            db().rollback()
            call = fresh(call_id)
            problems = place_problems(err.problems, _settings_fields(form, call.settings))
        except DomainError as err:
            refuse(form, err)
        else:
            if result.outcome == "unchanged":
                flash("Nothing was changed: the settings are as they were.", "info")
            else:
                flash("The call's settings were saved.", "success")
            return redirect(url_for(".call_settings", call_id=call.id))
    return _settings_page(call, form, problems=problems, code=422)


@bp.post("/calls/<int:call_id>/definition")
def call_replace(call_id: int):
    call = _console_call(call_id)
    replace = ReplaceForm(prefix="replace")
    problems: list = []
    if replace.validate_on_submit():
        raw, name = _uploaded(replace.definition)
        try:
            definition = console.definition_from_toml(raw, name)
            result = console.update_definition(db(), actor(), call, definition, reason=replace.reason.data or None)
            commit()
        except CallDefinitionError as err:
            db().rollback()
            call = fresh(call_id)
            problems = _upload_refused(replace.definition, err, f"{name} cannot replace the definition")
        except DomainError as err:
            refuse(replace, err)
        else:
            flash("Nothing was changed: the uploaded definition is the current one." if result.outcome == "unchanged"
                  else f"The call's definition was replaced by {name}.", "info" if result.outcome == "unchanged"
                  else "success")
            return redirect(url_for(".call_settings", call_id=call.id))
    return _settings_page(call, _settings_form(call), replace, problems, 422)


# ---------------------------------------------------------------------------------------------------------
# Opening a stage now (closing has its own page: secretariat.close_stage)


def _stage(call: Call, kind: str):
    status = next((s for s in console.stage_statuses(call) if s.kind == kind), None)
    if status is None:
        abort(404)
    return status


@bp.get("/calls/<int:call_id>/stages/<kind>/open")
def open_stage(call_id: int, kind: str):
    call = _console_call(call_id)
    return render_template("secretariat/open_stage.html", call=call, stage=_stage(call, kind), form=ConfirmForm(),
                           counts=console.state_counts(db(), call))


@bp.post("/calls/<int:call_id>/stages/<kind>/open")
def open_stage_post(call_id: int, kind: str):
    call = _console_call(call_id)
    stage = _stage(call, kind)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            opens = console.open_stage_now(db(), actor(), call, kind)
            commit()
        except CallDefinitionError as err:
            db().rollback()
            for key, why in err.problems:
                flash(f"{key}: {why}", "danger")
        except DomainError as err:
            refuse(None, err)
        else:
            flash(f"The {stage.label} stage is open since {format_instant(opens, call.time_zone)}; applicants can "
                  f"submit until {format_instant(stage.deadline, call.time_zone)}.", "success")
            return redirect(url_for(".call_home", call_id=call.id))
    call = fresh(call_id)
    return render_template("secretariat/open_stage.html", call=call, stage=_stage(call, kind), form=form,
                           counts=console.state_counts(db(), call)), 422
