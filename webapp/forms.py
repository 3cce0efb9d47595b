"""WTForms (Flask-WTF) forms. Validation messages are shown next to their fields."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Email, Length


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(message="enter your e-mail address"),
                                             Email(message="this is not an e-mail address"), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(message="enter your password"),
                                                     Length(max=500)])
    submit = SubmitField("Log in")
