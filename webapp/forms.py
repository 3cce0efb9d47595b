"""WTForms (Flask-WTF) forms. Validation messages are shown next to their fields."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from workflow.accounts import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

_PASSWORD_LENGTH = f"the password needs at least {MIN_PASSWORD_LENGTH} characters"
_PASSWORD_TOO_LONG = f"the password may have at most {MAX_PASSWORD_LENGTH} characters"
_NOT_SAME = "the two passwords are not the same"


def _email_field(label: str = "E-mail") -> EmailField:
    return EmailField(label, validators=[
        DataRequired(message="enter your e-mail address"),
        Length(max=MAX_EMAIL_LENGTH, message=f"an e-mail address has at most {MAX_EMAIL_LENGTH} characters"),
        Email(message="this is not an e-mail address"),
    ], render_kw={"autocomplete": "email"})


def _new_password_fields(label: str, repeat_label: str) -> tuple[PasswordField, PasswordField]:
    password = PasswordField(label, validators=[
        DataRequired(message="choose a password"),
        Length(min=MIN_PASSWORD_LENGTH, message=_PASSWORD_LENGTH),
        Length(max=MAX_PASSWORD_LENGTH, message=_PASSWORD_TOO_LONG),
    ], render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(repeat_label, validators=[
        DataRequired(message="repeat the password"),
        EqualTo("password", message=_NOT_SAME),
    ], render_kw={"autocomplete": "new-password"})
    return password, confirm


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(message="enter your e-mail address"),
                                             Email(message="this is not an e-mail address"), Length(max=254)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField("Password", validators=[DataRequired(message="enter your password"),
                                                     Length(max=500)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Log in")


class RegisterForm(FlaskForm):
    name = StringField("Name", validators=[
        DataRequired(message="enter your name"),
        Length(max=MAX_NAME_LENGTH, message=f"the name may have at most {MAX_NAME_LENGTH} characters"),
    ], render_kw={"autocomplete": "name"})
    email = _email_field()
    password, confirm = _new_password_fields("Password", "Repeat the password")
    submit = SubmitField("Create account")


class ResendConfirmationForm(FlaskForm):
    email = _email_field()
    submit = SubmitField("Send a new link")


class ForgotPasswordForm(FlaskForm):
    email = _email_field()
    submit = SubmitField("Send me a link")


class ResetPasswordForm(FlaskForm):
    password, confirm = _new_password_fields("New password", "Repeat the new password")
    submit = SubmitField("Change password")
