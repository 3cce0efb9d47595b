"""The demo population: the EP PerMed JTC2024 call with about forty proposals in every lifecycle state, an
open copy of the call for visitors to try, and one account per role.

Everything is made by the real operations (create_user, grant_role, load_call, create_proposal,
add_partner, transition, open_checks, sign_off, decide_eligibility) with the clock frozen at plausible
instants of the 2024 calendar, so the audit chain, the submissions and the outbox are what the application
itself would have written. The data is deterministic (random.Random(2024); the evaluation draws from its own
random.Random(2025), so the proposals do not depend on it); only the open call's dates follow the real
current date. Loading twice changes nothing: the second run finds the secretariat account and only reports.

The evaluation is real too, made by the operations of reviews/: a panel of twelve reviewers (the three demo
reviewer accounts and nine experts without a password) invited, with profiles and the confidentiality
declaration; automatic assignment of three reviewers per proposal; reviews in half points with comments;
the panel's consensus; the pre-stage ranking approved before the invitations and the full-stage ranking
approved before the funding decisions; the rebuttal window with the coordinators' rebuttals. The lifecycle
guards (at least three completed reviews, the consensus, the approved ranking) hold for every step. The
loader imports reviews/ when it runs (see `_review_operations`); importing this module does not, so the
arrow from reviews/ to workflow/ stays one-way for everything else in workflow/.

A note on closing stages. `close_stage` moves every submitted proposal of a stage to the eligibility check
and lapses every draft, so after it no proposal of the stage can be left in draft, submitted, invited,
full_draft or full_submitted. To show those states next to the later ones in one call, the demo closes the
stages proposal by proposal after the deadline, firing the same transitions close_stage fires
(`close_submission` followed by `open_checks`, and `lapse`); the `stage_closed` guard accepts a passed
deadline. A few proposals are left behind as a secretariat would find them before closing. Likewise the
rebuttal window is opened by its operation (which moves every proposal under review), but the proposals
leave the rebuttal one by one, so that two stay in "rebuttal". The two proposals left "under review" had
their full-stage eligibility confirmed late, after the rebuttal window had opened; each has a demo
reviewer's review still open.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow import audit
from workflow.access import can
from workflow.accounts import create_user, find_user, grant_role
from workflow.callconfig import CallDef, FunderDef, load_call_file
from workflow.calls import load_call
from workflow.clock import from_local, frozen, utcnow
from workflow.countries import EU_OR_ASSOCIATED
from workflow.lifecycle import Variant, states_for
from workflow.models import Call, EligibilityCheck, Partner, Proposal, ProposalMember, User
from workflow.operations import decide_eligibility, open_checks, sign_off, transition
from workflow.proposals import (
    PartnerData,
    add_partner,
    create_proposal,
    require,
    state_counts,
    update_partner,
    update_proposal,
)
from workflow.submission import submit_rebuttal
from workflow.timefmt import format_instant

CALLS_DIR = Path(__file__).resolve().parent.parent / "config" / "calls"
EPPERMED_FILE = CALLS_DIR / "eppermed-jtc2024.toml"
OPEN_CODE = "eppermed-jtc2027-open"
OPEN_TITLE = "EP PerMed Joint Transnational Call 2027 (open demo)"
DOMAIN = "demo.jointcall.example"
SEED = 2024

ADMIN = f"admin@{DOMAIN}"
SECRETARIAT = f"secretariat@{DOMAIN}"
OFFICERS = {"ANR": f"officer.anr@{DOMAIN}", "BMBF": f"officer.bmbf@{DOMAIN}", "ISCIII": f"officer.isciii@{DOMAIN}"}
REVIEWERS = (f"reviewer1@{DOMAIN}", f"reviewer2@{DOMAIN}", f"reviewer3@{DOMAIN}")
COORDINATOR_1 = f"coordinator1@{DOMAIN}"
COORDINATOR_2 = f"coordinator2@{DOMAIN}"
CO_APPLICANT = f"coapplicant@{DOMAIN}"

# (role, e-mail, password, name): every account a visitor can log in with.
DEMO_ACCOUNTS: list[tuple[str, str, str, str]] = [
    ("Administrator", ADMIN, "demo-administrator", "Søren Ødegaard"),
    ("Joint Call Secretariat (both EP PerMed calls)", SECRETARIAT, "demo-secretariat", "Élodie Marchand"),
    ("Funder officer, ANR (France)", OFFICERS["ANR"], "demo-officer-anr", "François Lefèvre"),
    ("Funder officer, BMBF (Germany)", OFFICERS["BMBF"], "demo-officer-bmbf", "Jürgen Müller"),
    ("Funder officer, ISCIII (Spain)", OFFICERS["ISCIII"], "demo-officer-isciii", "Begoña Martínez Ruiz"),
    ("Reviewer", REVIEWERS[0], "demo-reviewer-1", "Łucja Wójcik"),
    ("Reviewer", REVIEWERS[1], "demo-reviewer-2", "Henrik Söderström"),
    ("Reviewer", REVIEWERS[2], "demo-reviewer-3", "Aoife Ní Bhriain"),
    ("Coordinator: funded JTC2024 proposal, draft in the open call", COORDINATOR_1, "demo-coordinator-1",
     "Zoë García"),
    ("Coordinator: JTC2024 proposal in rebuttal", COORDINATOR_2, "demo-coordinator-2", "Inês Gonçalves"),
    ("Co-applicant (invited partner PI)", CO_APPLICANT, "demo-coapplicant", "Kärt Tamm"),
]

_ACCOUNT = {email: (role, password, name) for role, email, password, name in DEMO_ACCOUNTS}


# ---------------------------------------------------------------------------------------------------------
# Organisations and people


class Org(NamedTuple):
    name: str
    country: str
    kind: str  # partner type
    funder: str | None  # acronym; None = brings its own funding
    slug: str
    region: str | None = None


ORGS: tuple[Org, ...] = (
    # France (ANR)
    Org("Institut Curie", "FR", "clinical", "ANR", "curie"),
    Org("Inserm – Institut national de la santé et de la recherche médicale", "FR", "academia", "ANR", "inserm"),
    Org("Université Paris Cité", "FR", "academia", "ANR", "u-paris"),
    Org("Hospices Civils de Lyon", "FR", "clinical", "ANR", "chu-lyon"),
    Org("Gustave Roussy", "FR", "clinical", "ANR", "gustaveroussy"),
    Org("Institut Pasteur", "FR", "academia", "ANR", "pasteur"),
    Org("Owkin SAS", "FR", "industry", "ANR", "owkin"),
    # Germany (BMBF, BMG, Saxony)
    Org("Charité – Universitätsmedizin Berlin", "DE", "clinical", "BMBF", "charite"),
    Org("Deutsches Krebsforschungszentrum (DKFZ)", "DE", "academia", "BMBF", "dkfz"),
    Org("Ludwig-Maximilians-Universität München", "DE", "academia", "BMBF", "lmu"),
    Org("Universitätsklinikum Heidelberg", "DE", "clinical", "BMBF", "ukhd"),
    Org("Universitätsklinikum Hamburg-Eppendorf", "DE", "clinical", "BMG", "uke"),
    Org("Deutsche Rheuma-Liga Bundesverband e.V.", "DE", "patient_organisation", "BMG", "rheuma-liga"),
    Org("Technische Universität Dresden", "DE", "academia", "SMWK", "tu-dresden", "Saxony"),
    Org("Universitätsklinikum Leipzig", "DE", "clinical", "SMWK", "uk-leipzig", "Saxony"),
    # Spain (ISCIII)
    Org("Hospital Clínic de Barcelona", "ES", "clinical", "ISCIII", "clinic-barcelona"),
    Org("Centro Nacional de Investigaciones Oncológicas (CNIO)", "ES", "academia", "ISCIII", "cnio"),
    Org("Hospital Universitario La Paz", "ES", "clinical", "ISCIII", "lapaz"),
    Org("Instituto de Investigación Sanitaria La Fe", "ES", "clinical", "ISCIII", "iislafe"),
    Org("Universidad de Navarra", "ES", "academia", "ISCIII", "unav"),
    # Italy (Ministry of Health, Lombardy)
    Org("IRCCS Azienda Ospedaliero-Universitaria di Bologna", "IT", "clinical", "IT-MoH", "aosp-bo"),
    Org("IRCCS Ospedale San Raffaele", "IT", "clinical", "IT-MoH", "hsr"),
    Org("IRCCS Istituto Giannina Gaslini", "IT", "clinical", "IT-MoH", "gaslini"),
    Org("Fondazione IRCCS Istituto Nazionale dei Tumori", "IT", "clinical", "FRRB", "istitutotumori", "Lombardy"),
    Org("Università degli Studi di Milano", "IT", "academia", "FRRB", "unimi", "Lombardy"),
    # Ireland
    Org("Trinity College Dublin", "IE", "academia", "SFI", "tcd"),
    Org("University College Cork", "IE", "academia", "SFI", "ucc"),
    Org("St James's Hospital Dublin", "IE", "clinical", "HRB", "stjames"),
    Org("RCSI University of Medicine and Health Sciences", "IE", "academia", "HRB", "rcsi"),
    Org("IPPOSI – Irish Platform for Patient Organisations, Science and Industry", "IE", "patient_organisation",
        "HRB", "ipposi"),
    # Belgium
    Org("Université catholique de Louvain", "BE", "academia", "F.R.S.-FNRS", "uclouvain", "Wallonia-Brussels"),
    Org("Université libre de Bruxelles", "BE", "academia", "F.R.S.-FNRS", "ulb", "Wallonia-Brussels"),
    Org("Biocartis NV", "BE", "industry", "VLAIO", "biocartis", "Flanders"),
    # Portugal
    Org("Universidade de Lisboa", "PT", "academia", "FCT", "ulisboa"),
    Org("Universidade do Porto", "PT", "academia", "FCT", "up"),
    Org("Centro Hospitalar Universitário de São João", "PT", "clinical", "FCT", "chsj"),
    Org("Fundação Champalimaud", "PT", "academia", "FCT", "champalimaud"),
    # Central and northern Europe
    Org("Univerzita Karlova", "CZ", "academia", "AZV-CR", "cuni"),
    Org("Fakultní nemocnice v Motole", "CZ", "clinical", "AZV-CR", "fnmotol"),
    Org("Semmelweis Egyetem", "HU", "academia", "NKFIH", "semmelweis"),
    Org("Szegedi Tudományegyetem", "HU", "academia", "NKFIH", "u-szeged"),
    Org("Medizinische Universität Wien", "AT", "academia", "FWF", "meduniwien"),
    Org("Medizinische Universität Innsbruck", "AT", "academia", "FWF", "i-med"),
    Org("Karolinska Institutet", "SE", "academia", "VR", "ki"),
    Org("Uppsala universitet", "SE", "academia", "VR", "uu"),
    Org("Rigshospitalet", "DK", "clinical", "IFD", "rigshospitalet"),
    Org("Aarhus Universitet", "DK", "academia", "IFD", "au"),
    Org("Helsingin yliopisto", "FI", "academia", "AKA", "helsinki"),
    Org("Tampereen yliopisto", "FI", "academia", "AKA", "tuni"),
    Org("Universitetet i Oslo", "NO", "academia", "RCN", "uio"),
    Org("Oslo universitetssykehus", "NO", "clinical", "RCN", "ous"),
    Org("Luxembourg Institute of Health", "LU", "academia", "FNR", "lih"),
    Org("Hacettepe Üniversitesi", "TR", "academia", "TUBITAK", "hacettepe"),
    # Widening countries (one of them allows a seventh partner)
    Org("Uniwersytet Jagielloński – Collegium Medicum", "PL", "academia", "NCBR", "uj"),
    Org("Gdański Uniwersytet Medyczny", "PL", "academia", "NCBR", "gumed"),
    Org("Tartu Ülikool", "EE", "academia", "ETAg", "ut"),
    Org("Rīgas Stradiņa universitāte", "LV", "academia", "LCS", "rsu"),
    Org("Universitatea de Medicină și Farmacie „Carol Davila” din București", "RO", "academia", "UEFISCDI",
        "umfcd"),
    Org("Biomedicínske centrum SAV", "SK", "academia", "SAS", "bmc-sav"),
    Org("Sveučilište u Zagrebu", "HR", "academia", "MSE", "unizg"),
    # Outside Europe
    Org("McGill University", "CA", "academia", "FRQS", "mcgill", "Quebec"),
    Org("University of Toronto", "CA", "academia", "CIHR", "utoronto"),
    Org("University of Cape Town", "ZA", "academia", "SAMRC", "uct"),
    # Partners bringing their own funding (non-participating country, or not fundable by their national FO)
    Org("Universitätsspital Zürich", "CH", "clinical", None, "usz"),
    Org("University College London", "GB", "academia", None, "ucl"),
    Org("Università di Bologna", "IT", "academia", None, "unibo"),
)
ORG_BY_NAME = {o.name: o for o in ORGS}
FUNDED_ORGS = tuple(o for o in ORGS if o.funder)
OWN_FUNDED_ORGS = tuple(o for o in ORGS if not o.funder)
# Coordinators come from academic or clinical partners of the larger European programmes.
LEAD_ORGS = tuple(o for o in FUNDED_ORGS if o.kind in ("academia", "clinical")
                  and o.country in ("FR", "DE", "ES", "IT", "IE", "PT", "AT", "SE", "DK", "FI", "NO", "BE"))

# Given names (women, men) and family names (women, men: the same list where the language does not inflect).
_NAMES: dict[str, tuple[str, str, str, str | None]] = {
    "FR": ("Amélie Chloé Hélène Céline Léa Mathilde Élise Margaux", "Étienne Jérôme Benoît Théo Raphaël Clément "
           "Gaël Loïc", "Moreau Girard Bérenger Rousseau Faure Lemaître Dubois Chevalier Mercier Fontaine", None),
    "DE": ("Annika Käthe Friederike Sabine Lena Ursula Mareike Jördis", "Lukas Jörg Sören Matthias Maximilian "
           "Björn Tobias Günter", "Schröder Weiß Köhler Hoffmann Schäfer Krüger Vogel Böhm Groß Neumann", None),
    "AT": ("Theresia Magdalena Verena Johanna", "Florian Günther Stefan Lukas", "Huber Gruber Pichler Mayrhofer "
           "Steiner Hölzl", None),
    "ES": ("María Nuria Lucía Ainhoa Pilar Rocío Itziar", "José Íñigo Álvaro Sergio Raúl Jesús Andrés Joaquín",
           "Fernández López Núñez Ibáñez Muñoz Sánchez Ortiz Peña Domínguez Gómez", None),
    "IT": ("Giulia Chiara Francesca Federica Ilaria Benedetta", "Matteo Niccolò Lorenzo Alessandro Andrea Fabrizio",
           "Rossi Esposito Bianchi Colombo Ricci Marino Greco Caruso Gallo Mancini", None),
    "IE": ("Siobhán Niamh Órla Clodagh Sinéad Gráinne", "Seán Ciarán Pádraig Eoin Darragh Cathal",
           "Murphy Kelly Byrne Ryan Walsh O'Brien Doyle McCarthy Brennan", None),
    "PT": ("Margarida Beatriz Mariana Joana Conceição", "João Gonçalo Tomás Luís Rui Sebastião",
           "Simões Magalhães Pereira Ferreira Araújo Lourenço Antunes Brandão", None),
    "BE": ("Anneleen Sofie Hélène Noémie", "Pieter Jeroen Frédéric Grégoire", "Janssens Peeters Maes Dupont "
           "Lambert Vermeulen Lejeune", None),
    "CZ": ("Tereza Kateřina Barbora Lucie Zdeňka", "Jiří Lukáš Tomáš Ondřej Václav",
           "Dvořáková Novotná Černá Procházková Kučerová Veselá", "Dvořák Novotný Černý Procházka Kučera Veselý"),
    "HU": ("Zsófia Eszter Réka Katalin Ágnes", "Gábor Ádám Bence László Péter", "Kovács Szabó Tóth Horváth "
           "Varga Kiss Molnár Németh", None),
    "NO": ("Ingrid Solveig Åse Kari Sigrid", "Øystein Håkon Bjørn Lars Eirik", "Hansen Johansen Bakken Sæther "
           "Løvås Haugen Berg", None),
    "SE": ("Åsa Märta Ingela Karin Sofia", "Göran Björn Anders Nils Måns", "Lindqvist Åkesson Nyström Ekström "
           "Sjöberg Holmgren", None),
    "DK": ("Mette Birgitte Freja Ida", "Jørgen Mads Rasmus Søren", "Nielsen Jørgensen Sørensen Rasmussen "
           "Mølgaard Kjær", None),
    "FI": ("Päivi Aino Sanna Kaisa", "Jukka Mikko Väinö Antti", "Virtanen Mäkinen Häkkinen Nieminen Järvinen "
           "Kärkkäinen", None),
    "PL": ("Małgorzata Agnieszka Katarzyna Zofia", "Paweł Michał Krzysztof Łukasz", "Kowalska Zielińska "
           "Wiśniewska Dąbrowska", "Kowalski Zieliński Wiśniewski Dąbrowski"),
    "EE": ("Liis Triin Mari Kadri", "Jüri Tõnis Märt Andres", "Saar Sepp Mägi Kask Rebane", None),
    "LV": ("Līga Ilze Māra Dace", "Jānis Andris Mārtiņš Kārlis", "Bērziņa Kalniņa Ozola Liepiņa",
           "Bērziņš Kalniņš Ozols Liepiņš"),
    "RO": ("Ioana Andreea Mădălina Ștefania", "Andrei Mihai Ștefan Răzvan", "Popescu Ionescu Constantinescu "
           "Dumitrescu Stănescu", None),
    "SK": ("Zuzana Katarína Jana Mária", "Juraj Ľubomír Peter Martin", "Kováčová Balážová Šimková",
           "Kováč Baláž Šimko"),
    "HR": ("Ivana Ana Marija Petra", "Ivan Luka Marko Tomislav", "Kovačević Babić Marić Jurić Knežević", None),
    "TR": ("Elif Ayşe Zeynep Gülşen", "Mehmet Emre Çağlar Oğuz", "Yılmaz Kaya Demir Şahin Çelik Öztürk", None),
    "LU": ("Claire Anne Sophie", "Luc Marc Yves", "Schmit Weber Wagner Kieffer Thill", None),
    "CA": ("Émilie Sarah Geneviève Olivia", "Louis Mathieu Jean-François Liam", "Tremblay Gagnon Roy Côté "
           "Bouchard Wilson", None),
    "ZA": ("Thandi Nomvula Lerato Anika", "Sipho Thabo Pieter Kagiso", "Nkosi Dlamini Mokoena Naidoo Botha",
           None),
    "CH": ("Regula Cornelia Anne-Laure", "Urs Beat Reto", "Meier Brunner Keller Zürcher Frei", None),
    "GB": ("Harriet Eleanor Priya", "Oliver Rhys Alastair", "Thompson Evans Patel Hughes Clarke", None),
}

_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "Ae", "đ": "d",
                       "ı": "i", "œ": "oe", "ð": "d", "þ": "th"})


def ascii_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in text if not unicodedata.combining(c)).encode("ascii", "ignore").decode()


def _mail_local(name: str) -> str:
    parts = ascii_fold(name).lower().replace("'", "").split(" ", 1)
    return ".".join(p.replace(" ", "-") for p in parts)


# ---------------------------------------------------------------------------------------------------------
# Research themes: (acronym, title, condition, keywords)

THEMES: tuple[tuple[str, str, str, str], ...] = (
    ("PROGNOSIS-AML", "Multi-omic targets for risk-adapted therapy in acute myeloid leukaemia",
     "acute myeloid leukaemia", "leukaemia; multi-omics; minimal residual disease"),
    ("PGx-MOOD", "Pharmacogenomic guidance of antidepressant treatment in primary care",
     "major depressive disorder", "pharmacogenomics; CYP2D6; CYP2C19; primary care"),
    ("CARDIOTARGET", "Proteomic and polygenic targets for personalised heart-failure therapy",
     "heart failure with preserved ejection fraction", "heart failure; proteomics; polygenic risk"),
    ("SJÖGREN-STRAT", "Interferon signatures to stratify treatment of Sjögren's disease",
     "Sjögren's disease", "autoimmunity; interferon signature; stratified medicine"),
    ("MASLD-PREDICT", "Metabolic targets for personalised management of steatotic liver disease",
     "metabolic dysfunction-associated steatotic liver disease", "MASLD; metabolomics; liver fibrosis"),
    ("EPI-GENE-KIDS", "Genotype-guided anti-seizure therapy in childhood epilepsy",
     "childhood-onset epilepsy", "epilepsy; paediatrics; precision dosing"),
    ("RA-RESPOND", "Predicting response to biologics in rheumatoid arthritis",
     "rheumatoid arthritis", "rheumatology; biologics; response prediction"),
    ("CRC-MRD", "Liquid-biopsy targets for minimal residual disease in colorectal cancer",
     "colorectal cancer", "ctDNA; liquid biopsy; adjuvant therapy"),
    ("DIA-SUBTYPE", "Subtype-specific treatment targets in adult-onset diabetes",
     "adult-onset diabetes", "diabetes subtypes; clustering; GLP-1"),
    ("IBD-TAILOR", "Tissue and microbiome targets to tailor therapy in Crohn's disease",
     "Crohn's disease", "inflammatory bowel disease; microbiome; anti-TNF"),
    ("ALS-TARGET", "Validation of patient-derived targets in amyotrophic lateral sclerosis",
     "amyotrophic lateral sclerosis", "ALS; iPSC models; antisense oligonucleotides"),
    ("PANC-IMMUNE", "Immune targets for stratified therapy of pancreatic ductal adenocarcinoma",
     "pancreatic cancer", "PDAC; tumour microenvironment; immunotherapy"),
    ("ASTHMA-ENDO", "Endotype-driven biologic therapy in severe asthma",
     "severe asthma", "asthma endotypes; type-2 inflammation; biologics"),
    ("KIDNEY-PATH", "Molecular pathology targets in chronic kidney disease progression",
     "chronic kidney disease", "nephrology; spatial transcriptomics; progression"),
    ("LUNG-RESIST", "Overcoming targeted-therapy resistance in EGFR-mutant lung cancer",
     "EGFR-mutant non-small-cell lung cancer", "NSCLC; drug resistance; EGFR"),
    ("SEPSIS-OMICS", "Host-response targets for personalised sepsis treatment",
     "sepsis", "critical care; transcriptomics; immunomodulation"),
    ("MS-PROGRESS", "Targets of progression in multiple sclerosis",
     "progressive multiple sclerosis", "neuroinflammation; neurofilament light; MRI"),
    ("GLIO-VALID", "Functional validation of druggable targets in glioblastoma",
     "glioblastoma", "neuro-oncology; organoids; CRISPR screens"),
    ("PSORIA-PM", "Personalised biologic selection in psoriatic disease",
     "psoriasis and psoriatic arthritis", "dermatology; biologics; treatment switching"),
    ("OVARIAN-HRD", "Homologous-recombination targets beyond BRCA in ovarian cancer",
     "high-grade serous ovarian cancer", "HRD; PARP inhibitors; genomics"),
    ("AF-GENOMICS", "Genomic targets for rhythm-control therapy in atrial fibrillation",
     "atrial fibrillation", "cardiology; genomics; ablation outcome"),
    ("PEDI-CARDIO", "Targets in inherited cardiomyopathies of children",
     "paediatric cardiomyopathy", "rare disease; cardiogenetics; paediatrics"),
    ("ALZ-STRATIFY", "Blood-based biomarker targets to stratify early Alzheimer's disease",
     "early Alzheimer's disease", "dementia; plasma p-tau; stratification"),
    ("HCC-TARGET", "Targets for personalised systemic therapy in hepatocellular carcinoma",
     "hepatocellular carcinoma", "liver cancer; immunotherapy; biomarkers"),
    ("COPD-PHENO", "Phenotype-specific targets for exacerbation prevention in COPD",
     "chronic obstructive pulmonary disease", "COPD; eosinophils; exacerbations"),
    ("MELANOMA-IO", "Predicting immunotherapy benefit in advanced melanoma",
     "advanced melanoma", "immune checkpoint inhibitors; TMB; radiomics"),
    ("RARE-NEPHRO", "Genetic targets for precision care in rare kidney diseases",
     "rare inherited kidney disease", "rare disease; exome sequencing; nephrology"),
    ("PAIN-PGx", "Pharmacogenomics of opioid response in chronic pain",
     "chronic non-cancer pain", "opioids; pharmacogenomics; OPRM1"),
    ("TB-HOST", "Host-directed therapy targets in drug-resistant tuberculosis",
     "drug-resistant tuberculosis", "infectious disease; host-directed therapy; transcriptomics"),
    ("PROSTATE-AR", "Androgen-receptor pathway targets in metastatic prostate cancer",
     "metastatic prostate cancer", "androgen receptor; ctDNA; resistance"),
    ("SCHIZO-PRED", "Predicting clozapine response in treatment-resistant schizophrenia",
     "treatment-resistant schizophrenia", "psychiatry; clozapine; polygenic scores"),
    ("LUPUS-SIGN", "Molecular signatures to target therapy in systemic lupus erythematosus",
     "systemic lupus erythematosus", "lupus; interferon; B-cell therapy"),
    ("OBESITY-PM", "Targets of response to anti-obesity medication",
     "obesity", "GLP-1 receptor agonists; metabolomics; weight loss"),
    ("STROKE-RECOVER", "Personalised targets for recovery after ischaemic stroke",
     "ischaemic stroke", "neurology; rehabilitation; biomarkers"),
    ("MYELOMA-CAR", "Targets of durable response to CAR-T cells in multiple myeloma",
     "multiple myeloma", "CAR-T; BCMA; haematology"),
    ("HEAD-NECK-HPV", "HPV-driven targets for treatment de-escalation in oropharyngeal cancer",
     "HPV-positive oropharyngeal cancer", "head and neck cancer; HPV; de-escalation"),
    ("THYROID-RAI", "Targets of radioiodine refractoriness in differentiated thyroid cancer",
     "differentiated thyroid cancer", "endocrinology; radioiodine; BRAF"),
    ("CF-MODULATE", "Personalised CFTR-modulator therapy for rare cystic fibrosis variants",
     "cystic fibrosis", "CFTR modulators; organoids; rare variants"),
    ("ENDO-TARGET", "Molecular targets for personalised endometriosis treatment",
     "endometriosis", "women's health; transcriptomics; hormonal therapy"),
    ("GOUT-PGx", "Genetic targets for urate-lowering therapy in gout",
     "gout", "rheumatology; ABCG2; allopurinol"),
    ("VASC-AGE", "Targets of vascular ageing for personalised hypertension care",
     "resistant hypertension", "hypertension; arterial stiffness; pharmacogenomics"),
    ("MENIÈRE-PM", "Endotype-specific targets in Ménière's disease",
     "Ménière's disease", "otology; inner ear; endotypes"),
)

TOPICS = (
    "Module 1: identification of targets for personalised medicine",
    "Module 2: validation of targets in clinical and pre-clinical settings",
    "Module 3: implementation of target-based personalised approaches",
)

# ---------------------------------------------------------------------------------------------------------
# The storylines: where each proposal ends and the steps that take it there.

_PRE = ("submit", "close")
_ELIGIBLE = _PRE + ("eligible",)
_INVITED = _ELIGIBLE + ("invite",)
_FULL = _INVITED + ("start_full", "submit_full", "close_full", "full_eligible")
_PANEL = _FULL + ("open_rebuttal", "close_rebuttal")

# (final state, steps, who: None, "coordinator1" or "coordinator2", funders that must take part)
STORIES: tuple[tuple[str, tuple[str, ...], str | None, tuple[str, ...]], ...] = (
    ("funded", _PANEL + ("recommend", "select", "fund"), "coordinator1", ("ISCIII", "ETAg")),
    ("rebuttal", _FULL + ("open_rebuttal",), "coordinator2", ("FCT",)),
    ("draft", (), None, ()),
    ("submitted", ("submit",), None, ()),
    ("not_submitted", ("lapse_pre",), None, ()),
    ("not_submitted", _INVITED + ("start_full", "lapse_full"), None, ()),
    ("eligibility_check", _PRE + ("pending",), None, ("ANR", "BMBF", "ISCIII")),
    ("ineligible", _PRE + ("ineligible",), None, ("ANR",)),
    ("ineligible", _PRE + ("ineligible",), None, ("ISCIII",)),
    ("pre_review", _ELIGIBLE, None, ()),
    ("pre_review", _ELIGIBLE, None, ()),
    *(("not_invited", _ELIGIBLE + ("not_invite",), None, ()),) * 5,
    ("invited", _INVITED, None, ()),
    ("full_draft", _INVITED + ("start_full",), None, ()),
    ("full_submitted", _INVITED + ("start_full", "submit_full"), None, ()),
    ("full_eligibility_check", _INVITED + ("start_full", "submit_full", "close_full", "pending_full"), None,
     ("ANR", "BMBF", "ISCIII")),
    ("full_ineligible", _INVITED + ("start_full", "submit_full", "close_full", "full_ineligible"), None,
     ("BMBF",)),
    ("under_review", _FULL + ("late_full",), None, ()),
    ("under_review", _FULL + ("late_full",), None, ()),
    ("rebuttal", _FULL + ("open_rebuttal",), None, ()),
    ("panel", _PANEL, None, ()),
    ("panel", _PANEL, None, ()),
    *(("not_recommended", _PANEL + ("not_recommend",), None, ()),) * 3,
    ("recommended", _PANEL + ("recommend",), None, ()),
    ("selected", _PANEL + ("recommend", "select"), None, ()),
    ("selected", _PANEL + ("recommend", "select"), None, ()),
    ("reserve", _PANEL + ("recommend", "reserve"), None, ()),
    ("reserve", _PANEL + ("recommend", "reserve"), None, ()),
    ("not_funded", _PANEL + ("recommend", "not_fund"), None, ()),
    ("not_funded", _PANEL + ("recommend", "reserve", "reserve_not_fund"), None, ()),
    ("funded", _PANEL + ("recommend", "select", "fund"), None, ()),
    ("funded", _PANEL + ("recommend", "select", "fund"), None, ()),
    ("withdrawn", _ELIGIBLE + ("withdraw_pre",), None, ()),
    ("withdrawn", _FULL + ("withdraw_full",), None, ()),
)

# Funders whose officers are demo accounts: their checks are left pending where a proposal waits for them.
DEMO_OFFICER_FUNDERS = tuple(OFFICERS)

INELIGIBLE_REASONS = {
    "ANR": "ANR national rules: the principal investigator's fixed-term contract ends before the planned end "
           "of the project, and the host institution has not confirmed an extension.",
    "ISCIII": "ISCIII national rules: the partner's host institution is not an accredited health research "
              "institute (IIS) or university hospital eligible for ISCIII funding.",
    "BMBF": "BMBF national rules: the mandatory German project outline was not submitted via easy-Online by "
            "the national deadline.",
}


# ---------------------------------------------------------------------------------------------------------
# The evaluation: the panel, and the words of reviews, consensus summaries and rebuttals

# The demo reviewer accounts' organisations, countries and e-mail domains (their profile in the call).
PANEL_PROFILES: dict[str, tuple[str, str, str]] = {
    REVIEWERS[0]: ("Uniwersytet Medyczny w Łodzi", "PL", "umed-lodz"),
    REVIEWERS[1]: ("Lunds universitet", "SE", "lu"),
    REVIEWERS[2]: ("University of Galway", "IE", "universityofgalway"),
}
# Experts without a password. No panel member's organisation or e-mail domain is a partner's, so the
# automatic assignment finds no conflict of interest (reviews.conflicts). Their institutional addresses are
# under PANEL_DOMAIN: under DOMAIN they would share the e-mail domain of the demo coordinators' partners.
PANEL_DOMAIN = "panel.jointcall.example"
EXPERT_ORGS: tuple[Org, ...] = (
    Org("University of Edinburgh", "GB", "academia", None, "ed"),
    Org("Universität Zürich", "CH", "academia", None, "uzh"),
    Org("Medizinische Universität Graz", "AT", "academia", None, "medunigraz"),
    Org("Masarykova univerzita", "CZ", "academia", None, "muni"),
    Org("Universitetet i Bergen", "NO", "academia", None, "uib"),
    Org("Københavns Universitet", "DK", "academia", None, "ku"),
    Org("Oulun yliopisto", "FI", "academia", None, "oulu"),
    Org("Université de Montréal", "CA", "academia", None, "umontreal"),
    Org("Sveučilište u Splitu", "HR", "academia", None, "unist"),
)
LOAD_CAP = {"pre": 10, "full": 6}  # proposals per reviewer and stage in the automatic assignment

# Review comments per criterion and level ("high" 4 to 5, "mid" 3 to 3.5, "low" below 3).
COMMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "excellence": {
        "high": (
            "The objectives are original and clearly go beyond the state of the art in {condition}; the "
            "preliminary data are convincing.",
            "A well-argued, ambitious concept. The combination of deeply phenotyped cohorts and functional "
            "validation is a real strength.",
            "Excellent scientific quality: the hypotheses are explicit, testable and grounded in the partners' "
            "own recent work on {condition}.",
        ),
        "mid": (
            "Sound objectives, but the novelty compared with ongoing international work on {condition} is not "
            "fully argued.",
            "The methodology is adequate; the choice of candidate targets needs a clearer rationale.",
            "Good science overall, although the validation strategy relies on a single cohort.",
        ),
        "low": (
            "The central hypothesis is vague and the state of the art on {condition} is described only "
            "superficially.",
            "The methods are not described in enough detail to judge feasibility; the statistical analysis "
            "plan is missing.",
            "Largely incremental: similar targets have been studied before and the proposal does not say what "
            "is new.",
        ),
    },
    "impact": {
        "high": (
            "A clear and credible path to clinical use, with health-system partners and patient "
            "representatives involved from the start.",
            "Strong expected impact for patients with {condition}; the health-economic evaluation is well "
            "designed.",
            "The exploitation and dissemination plan is concrete, with realistic milestones towards a "
            "stratified trial.",
        ),
        "mid": (
            "The expected impact is plausible, but the route from validated targets to routine care remains "
            "generic.",
            "Dissemination is well planned; the involvement of patients is limited to an advisory role.",
            "Relevant for {condition}; the transferability to other health systems is not discussed.",
        ),
        "low": (
            "The impact section restates the objectives and gives no credible pathway to clinical practice.",
            "Patients and clinicians are hardly involved; uptake of the results is doubtful.",
            "The claimed benefits for {condition} are not supported by any estimate of the population "
            "concerned.",
        ),
    },
    "implementation": {
        "high": (
            "The work plan is coherent, the budget is justified and the partners' roles are complementary.",
            "A well-structured consortium with clear governance, realistic recruitment targets and good risk "
            "mitigation.",
            "Feasible within the duration; data management follows FAIR principles and the ethics issues are "
            "addressed.",
        ),
        "mid": (
            "The work plan is acceptable, but the recruitment targets at the clinical sites look ambitious.",
            "Resources are broadly adequate; the coordination effort seems underestimated.",
            "A reasonable plan; the dependencies between the work packages should be made explicit.",
        ),
        "low": (
            "The work plan lacks milestones and deliverables; the budget is not justified per partner.",
            "The consortium depends on one partner for most of the work; the others' roles are unclear.",
            "Recruitment of patients with {condition} at the planned scale is not credible within three years.",
        ),
    },
}

REBUTTAL_ANSWERS: dict[str, str] = {
    "excellence": (
        "Novelty. The reviewers ask how our approach differs from ongoing cohort studies of {condition}. Those "
        "studies describe associations; we test the candidate targets functionally in patient-derived models "
        "and validate them in an independent multinational cohort, which no current project does (section 1.2)."
    ),
    "impact": (
        "Route to clinical use. Two clinical partners have committed to a biomarker-stratified pilot in routine "
        "care in the third year, and the health-economic model of work package 4 will be built with the "
        "payers of two participating countries. The patient organisation co-designs the pilot."
    ),
    "implementation": (
        "Recruitment. The clinical sites already follow more than 2,400 patients with {condition} in their "
        "registries; the targets of the work plan need 38% of them. We have also budgeted a study nurse at each "
        "site, and a fourth site can join if recruitment lags after twelve months."
    ),
}


def _split(total: float, keys: list[str], rng: random.Random, *, floor: float) -> dict[str, float]:
    """Scores in half points for `keys`, adding up to `total`, none below `floor` nor above 5."""
    units = round(total * 2)
    base, extra = divmod(units, len(keys))
    values = [base] * len(keys)
    for i in rng.sample(range(len(keys)), extra):
        values[i] += 1
    if len(keys) > 1:  # one half point moved between two criteria, for variety
        i, j = rng.sample(range(len(keys)), 2)
        if values[i] - 1 >= floor * 2 and values[j] + 1 <= 10:
            values[i], values[j] = values[i] - 1, values[j] + 1
    return {k: v / 2 for k, v in zip(keys, values, strict=True)}


def _level(score: float) -> str:
    return "high" if score >= 4 else "mid" if score >= 3 else "low"


def _half(value: float) -> float:
    return round(value * 2) / 2


@dataclass
class PanelMember:
    email: str
    name: str
    organisation: str
    country: str
    domain: str  # the institutional e-mail domain of the profile
    keywords: list[str] = field(default_factory=list)
    token: str | None = None  # of the invitation, between sending and accepting it
    user: User | None = None


def _review_operations() -> SimpleNamespace:
    """The operations of reviews/ the demo's evaluation uses, imported when the loader runs and not when this
    module is imported: workflow/ does not depend on reviews/ (the arrow points from reviews to workflow).
    Importing reviews also registers the review guards the lifecycle table names (reviews.plugin)."""
    from reviews import aggregation, assignment, models, pool, ranking, release, scoring

    return SimpleNamespace(aggregation=aggregation, assignment=assignment, models=models, pool=pool,
                           ranking=ranking, release=release, scoring=scoring)


@dataclass
class Verdict:
    """What the panel agrees on a proposal (or, without `recommendation`, what its reviews hover around)."""

    scores: dict[str, float]
    total: float  # weighted
    recommendation: str | None = None


@dataclass
class PartnerPlan:
    org: Org
    pi_name: str
    pi_email: str
    budget: dict[str, int] = field(default_factory=dict)

    @property
    def requested(self) -> int:
        return sum(self.budget.values())


@dataclass
class Spec:
    target: str
    steps: tuple[str, ...]
    who: str | None
    theme: tuple[str, str, str, str]
    topic: str
    partners: list[PartnerPlan]
    created: dt.datetime | None = None
    resubmit: bool = False
    # The one draft left in the 2024 call was never completed (no abstract, no duration).
    incomplete: bool = False
    proposal_id: int | None = None
    # The partner position whose own funder finds it ineligible, per stage.
    ineligible_position: int | None = None

    def has(self, step: str) -> bool:
        return step in self.steps


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_demo(session: Session) -> str:
    """Load the demo calls, accounts and proposals (the caller commits); a second run changes nothing."""
    if find_user(session, SECRETARIAT) is not None:
        return ("The demo is loaded already; nothing was changed.\n\n" + accounts_table())
    return _DemoLoader(session).load()


def accounts_table() -> str:
    rows = [("Role", "E-mail", "Password", "Name")] + [tuple(a) for a in DEMO_ACCOUNTS]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["Demo accounts (log in with e-mail and password):"]
    for n, (role, email, password, name) in enumerate(rows):
        lines.append(f"  {role:<{widths[0]}}  {email:<{widths[1]}}  {password:<{widths[2]}}  {name}")
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(lines)


class _Plan:
    """Steps at instants; run in time order, each with the clock frozen at its instant."""

    def __init__(self) -> None:
        self.events: list[tuple[dt.datetime, int, object]] = []

    def at(self, when: dt.datetime, fn, *args, **kwargs) -> None:
        self.events.append((when, len(self.events), partial(fn, *args, **kwargs)))

    def run(self) -> None:
        for when, _, fn in sorted(self.events, key=lambda e: (e[0], e[1])):
            with frozen(when):
                fn()
        self.events.clear()


class _DemoLoader:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.rng = random.Random(SEED)
        self.review_rng = random.Random(SEED + 1)  # the evaluation's own draws: the proposals do not change
        self.definition = load_call_file(EPPERMED_FILE)
        self.zone = self.definition.time_zone
        self.funder_defs: dict[str, FunderDef] = {f.acronym: f for f in self.definition.funders}
        self.used_emails: set[str] = set()
        self.used_names: set[str] = set()
        self.users: dict[str, User] = {}
        self.officer_of: dict[str, User] = {}
        self.extra_accounts = Counter()
        self.rv = _review_operations()
        self.panel: list[PanelMember] = []
        self.verdicts: dict[tuple[int, str], Verdict] = {}  # (id(spec), stage) -> the panel's view
        self.rebutted: set[int] = set()  # id(spec) of the proposals whose coordinator rebuts

    # -- helpers ----------------------------------------------------------------------------------------

    def local(self, y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> dt.datetime:
        return from_local(dt.datetime(y, m, d, hh, mm), self.zone)

    def working_time(self, first: dt.date, last: dt.date, *, start_hour: int = 8, end_hour: int = 18,
                     rng: random.Random | None = None) -> dt.datetime:
        """A random instant on a working day between `first` and `last`, in office hours."""
        rng = rng or self.rng
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        day = rng.choice([d for d in days if d.weekday() < 5] or days)
        return self.local(day.year, day.month, day.day, rng.randint(start_hour, end_hour - 1), rng.randint(0, 59))

    def person(self, country: str, rng: random.Random | None = None) -> str:
        rng = rng or self.rng
        women, men, family_w, family_m = _NAMES[country]
        for _ in range(200):
            female = rng.random() < 0.5
            given = rng.choice((women if female else men).split())
            family = rng.choice((family_w if female or family_m is None else family_m).split())
            name = f"{given} {family}"
            if name not in self.used_names:
                self.used_names.add(name)
                return name
        raise RuntimeError(f"ran out of demo names for {country}")

    def email_for(self, name: str, org: Org) -> str:
        base = f"{_mail_local(name)}@{org.slug}.{DOMAIN}"
        email, n = base, 1
        while email in self.used_emails:
            n += 1
            email = base.replace("@", f"{n}@", 1)
        self.used_emails.add(email)
        return email

    def budget(self, funder: FunderDef | None, used: Counter, funds_left: Counter | None) -> dict[str, int]:
        if funder is None:
            return {}
        cap = funder.max_per_partner or 350_000
        if funder.max_per_project is not None:
            cap = min(cap, funder.max_per_project - used[funder.acronym])
        if funds_left is not None:
            cap = min(cap, funds_left[funder.acronym])
        low = min(cap, self.rng.choice((80_000, 100_000, 120_000, 150_000)))
        amount = low + 500 * self.rng.randint(0, (cap - low) // 500)
        used[funder.acronym] += amount
        if funds_left is not None:
            funds_left[funder.acronym] -= amount
        personnel = 100 * round(amount * self.rng.uniform(0.55, 0.68) / 100)
        consumables = 100 * round(amount * self.rng.uniform(0.15, 0.22) / 100)
        travel = 100 * round(amount * self.rng.uniform(0.03, 0.05) / 100)
        return {"personnel": personnel, "consumables": consumables, "travel": travel,
                "other": amount - personnel - consumables - travel}

    def room(self, org: Org, used: Counter, funds_left: Counter | None) -> int:
        """The largest request this organisation's funder could still grant in this consortium."""
        f = self.funder_defs[org.funder]
        cap = f.max_per_partner or 350_000
        if f.max_per_project is not None:
            cap = min(cap, f.max_per_project - used[f.acronym])
        if funds_left is not None:
            cap = min(cap, funds_left[f.acronym])
        return cap

    # -- consortia --------------------------------------------------------------------------------------

    def pick_orgs(self, lead: Org, required: tuple[str, ...], pinned: dict[str, tuple[str, str]],
                  funds_left: Counter | None) -> list[Org] | None:
        """One try at choosing the organisations; None when the result breaks a rule."""
        rules = self.definition.consortium
        chosen: list[Org] = [lead]
        countries = Counter([lead.country])

        def fits(org: Org) -> bool:
            if org in chosen or countries[org.country] >= rules.max_per_country:
                return False
            if org.funder is None:
                return True
            f = self.funder_defs[org.funder]
            if any(o.funder == org.funder for o in chosen) and (f.max_per_project or funds_left is not None):
                return False  # keep per-project caps and the funders' commitments simple
            return self.room(org, Counter(), funds_left) >= 60_000

        def take(candidates) -> None:
            pool = [o for o in candidates if fits(o)]
            fresh = [o for o in pool if countries[o.country] == 0]
            pick = self.rng.choice(fresh if fresh and self.rng.random() < 0.85 else pool)
            chosen.append(pick)
            countries[pick.country] += 1

        for name in pinned:
            org = ORG_BY_NAME[name]
            if org not in chosen:
                chosen.append(org)
                countries[org.country] += 1
        for acronym in required:
            if not any(o.funder == acronym for o in chosen):
                take([o for o in FUNDED_ORGS if o.funder == acronym])
        widening = any(o.country in rules.widening_countries for o in chosen)
        if not widening and self.rng.random() < 0.3:
            take([o for o in FUNDED_ORGS if o.country in rules.widening_countries])
            widening = True
        size = self.rng.choice((3, 4, 4, 5, 5, 5, 6, 6) + ((7, 7) if widening else ()))
        size = max(size, len(chosen))
        if size >= 4 and self.rng.random() < 0.15:
            take(OWN_FUNDED_ORGS)
        while len(chosen) < size:
            take(FUNDED_ORGS)
        funded = [o for o in chosen if o.funder]
        eu_ac = [o for o in funded if o.country in EU_OR_ASSOCIATED]
        limit = rules.max_partners + (rules.widening_bonus if widening else 0)
        if (len(funded) >= rules.min_funded_partners and len({o.country for o in funded}) >= rules.min_countries
                and len(eu_ac) >= rules.min_eu_associated_partners and len(chosen) <= limit):
            return chosen
        return None

    def consortium(self, *, lead: Org, required: tuple[str, ...], pinned: dict[str, tuple[str, str]],
                   funds_left: Counter | None) -> list[PartnerPlan]:
        """A consortium that meets the call's rules (DOMAIN.md §2), with PIs and budgets within the caps."""
        for _attempt in range(100):
            chosen = self.pick_orgs(lead, required, pinned, funds_left)
            if chosen is not None:
                break
        else:  # pragma: no cover - the seeded generator always finds one
            raise RuntimeError("could not build a valid demo consortium")
        used: Counter = Counter()
        plans = []
        for org in chosen:
            f = self.funder_defs[org.funder] if org.funder else None
            if org.name in pinned:
                pi_name, pi_email = pinned[org.name]
            else:
                pi_name = self.person(org.country)
                pi_email = self.email_for(pi_name, org)
            plans.append(PartnerPlan(org, pi_name, pi_email, self.budget(f, used, funds_left)))
        return plans

    def specs(self) -> list[Spec]:
        themes = list(THEMES)
        self.rng.shuffle(themes)
        # What the funders committed, for the proposals that end up selected or funded.
        funds_left = Counter({f.acronym: f.committed_budget for f in self.definition.funders})
        out = []
        for n, (target, steps, who, required) in enumerate(STORIES):
            pinned: dict[str, tuple[str, str]] = {}
            if who == "coordinator1":
                lead = ORG_BY_NAME["Hospital Clínic de Barcelona"]
                pinned[lead.name] = (_ACCOUNT[COORDINATOR_1][2], COORDINATOR_1)
                pinned["Tartu Ülikool"] = (_ACCOUNT[CO_APPLICANT][2], CO_APPLICANT)
            elif who == "coordinator2":
                lead = ORG_BY_NAME["Universidade de Lisboa"]
                pinned[lead.name] = (_ACCOUNT[COORDINATOR_2][2], COORDINATOR_2)
            elif "ineligible" in steps:
                # At the pre stage a partner its own funder rejects may be replaced later (rule 12), so
                # the proposal is ineligible only when it is the coordinator's own organisation.
                lead = self.rng.choice([o for o in LEAD_ORGS if o.funder == required[0]])
            else:
                lead = self.rng.choice(LEAD_ORGS)
            destined = "select" in steps
            partners = self.consortium(lead=lead, required=required, pinned=pinned,
                                       funds_left=funds_left if destined else None)
            spec = Spec(target, steps, who, themes[n], self.rng.choice(TOPICS), partners,
                        incomplete=target == "draft")
            if "ineligible" in steps or "full_ineligible" in steps:
                funder = required[0]
                spec.ineligible_position = (1 if "ineligible" in steps else
                                            max(i for i, p in enumerate(partners, 1) if p.org.funder == funder))
            out.append(spec)
        for spec in out:
            spec.created = self.working_time(dt.date(2024, 1, 15), dt.date(2024, 2, 9))
        candidates = [s for s in out if s.has("submit")]
        for spec in self.rng.sample(candidates, 5):
            spec.resubmit = True
        out.sort(key=lambda s: s.created)
        return out

    # -- texts ------------------------------------------------------------------------------------------

    def abstract(self, spec: Spec, stage: str) -> str:
        acronym, title, condition, _kw = spec.theme
        countries = sorted({p.org.country for p in spec.partners})
        parts = [
            f"{acronym} brings together {len(spec.partners)} partners from {len(countries)} countries to "
            f"identify and validate targets for personalised prevention and treatment of {condition}.",
            self.rng.choice((
                "Patients with the same diagnosis respond very differently to current treatment, and the "
                "molecular reasons are poorly understood.",
                f"Current guidelines for {condition} treat patients as one group although their disease "
                "mechanisms differ.",
                "Biomarker-guided treatment is still the exception in routine care for this condition.",
            )),
            self.rng.choice((
                "We will integrate genomic, transcriptomic and proteomic data from existing cohorts with "
                "clinical records to derive candidate targets,",
                "Building on well-characterised cohorts and biobanks of the partners, we will apply multi-omic "
                "profiling and machine learning to prioritise candidate targets,",
                "Using patient-derived models (organoids and iPSC-derived cells) and deeply phenotyped "
                "cohorts, we will map disease mechanisms to candidate targets,",
            )) + " " + self.rng.choice((
                "validate them in independent prospective samples, and assess their clinical utility.",
                "test them functionally, and validate them in an independent multinational cohort.",
                "and prepare a biomarker-stratified clinical study.",
            )),
            self.rng.choice((
                "Patient representatives take part in the design of the study and in the dissemination of "
                "its results.",
                "An ethics, legal and social aspects work package addresses data sharing under the GDPR and "
                "equitable access.",
                "Health-economic modelling will estimate the cost-effectiveness of the stratified approach.",
            )),
        ]
        if stage == "full":
            parts += [
                "Work package 1 harmonises data and samples across the clinical sites under a common FAIR "
                "data management plan; work package 2 discovers and prioritises targets; work package 3 "
                "validates them in independent samples and models; work package 4 evaluates clinical "
                "utility, health-economic impact and implementation in the participating health systems; "
                "work package 5 covers dissemination, exploitation and coordination.",
                "The consortium combines clinical, academic" + (
                    " and industrial" if any(p.org.kind == "industry" for p in spec.partners) else "")
                + " expertise; each partner leads the tasks closest to its strengths, and the national "
                "funding of each partner is requested under its funder's rules.",
                "Expected results are a validated target panel, a clinical decision-support prototype and a "
                "protocol for a prospective stratified trial, together with open data and code.",
            ]
        return " ".join(parts)

    # -- the run ----------------------------------------------------------------------------------------

    def load(self) -> str:
        s = self.session
        with frozen(self.local(2024, 1, 2, 8, 30)):
            _role, admin_pw, admin_name = _ACCOUNT[ADMIN]
            self.admin = create_user(s, None, email=ADMIN, name=admin_name, password=admin_pw, confirmed=True,
                                     is_admin=True, organisation="Jointcall demo")
        with frozen(self.local(2024, 1, 2, 9, 0)):
            self.call = load_call(s, self.admin, self.definition).call
        with frozen(self.local(2024, 1, 3, 10, 0)):
            self.secretariat = self.account(SECRETARIAT, organisation="Agence Nationale de la Recherche (JCS)",
                                            country="FR")
            grant_role(s, self.admin, self.secretariat, "secretariat", self.call.id)
        with frozen(self.local(2024, 1, 3, 11, 0)):
            self.make_officers(self.call)
        self.make_proposals()
        self.make_open_call()
        return self.report()

    def account(self, email: str, **kwargs) -> User:
        _role, password, name = _ACCOUNT[email]
        user = create_user(self.session, self.admin, email=email, name=name, password=password, confirmed=True,
                           **kwargs)
        self.users[email] = user
        return user

    def make_officers(self, call: Call) -> None:
        """One officer per funder: the demo accounts for ANR, BMBF and ISCIII, accounts without a password
        (named after the national contact) for the others, so that every partner can be signed off."""
        s = self.session
        for cf in sorted(call.funders, key=lambda cf: cf.funder.acronym):
            acronym = cf.funder.acronym
            if acronym in OFFICERS:
                user = self.account(OFFICERS[acronym], organisation=cf.funder.name, country=cf.funder.country)
            else:
                contact = (cf.national_contact or f"Officer {acronym}").split("<")[0].strip()
                name = contact.split(". ", 1)[-1] if contact.startswith(("Dr. ", "Ir. ", "Mgr. ")) else contact
                slug = re.sub(r"[^a-z0-9]+", "-", acronym.lower()).strip("-")
                user = create_user(s, self.admin, email=f"officer.{slug}@{DOMAIN}", name=name, password=None,
                                   confirmed=True, organisation=cf.funder.name, country=cf.funder.country)
                self.extra_accounts["funder officers without a password"] += 1
            grant_role(s, self.admin, user, "officer", call.id, cf.funder_id)
            self.officer_of[acronym] = user

    # -- JTC2024 proposals ------------------------------------------------------------------------------

    def make_proposals(self) -> None:
        plan = _Plan()
        specs = self.specs()
        self.specs_2024 = specs
        deadline_pre = self.call.stage("pre").deadline
        deadline_full = self.call.stage("full").deadline

        # The evaluation panel joins for the pre-proposal evaluation.
        self.plan_panel(plan)

        for spec in specs:
            plan.at(spec.created, self.create, spec)
            if spec.who == "coordinator1":
                plan.at(spec.created + dt.timedelta(days=1, hours=2), self.invite_co_applicant, spec)

        # Submission of pre-proposals: most in the last days before the deadline.
        for spec in specs:
            if not spec.has("submit"):
                continue
            if spec.resubmit:
                first = self.working_time(dt.date(2024, 2, 19), dt.date(2024, 2, 27))
                plan.at(first, self.fire, spec, "submit", coordinator=True)
                plan.at(first + dt.timedelta(days=1, hours=1), self.fire, spec, "reopen", coordinator=True,
                        reason="correcting the budget table before the deadline")
                plan.at(first + dt.timedelta(days=1, hours=2), self.revise_pre, spec)
                last = first + dt.timedelta(days=self.rng.randint(2, 5), hours=self.rng.randint(0, 3))
                plan.at(min(last, deadline_pre - dt.timedelta(hours=2)), self.fire, spec, "submit", coordinator=True)
            else:
                days_before = min(int(self.rng.expovariate(1 / 3)), 14)
                day = dt.date(2024, 3, 5) - dt.timedelta(days=days_before)
                when = self.local(day.year, day.month, day.day, self.rng.randint(8, 16), self.rng.randint(0, 59))
                plan.at(min(when, deadline_pre - dt.timedelta(minutes=3)), self.fire, spec, "submit",
                        coordinator=True)

        # After the deadline the secretariat moves the submissions to the eligibility check and lapses drafts.
        close_at = self.local(2024, 3, 6, 9, 0)
        for n, spec in enumerate(specs):
            if spec.has("close"):
                plan.at(close_at + dt.timedelta(minutes=n), self.close, spec, "pre")
            elif spec.has("lapse_pre"):
                plan.at(close_at + dt.timedelta(minutes=n), self.fire, spec, "lapse",
                        reason="not submitted before the deadline")
        self.schedule_checks(plan, specs, "pre", dt.date(2024, 3, 7), dt.date(2024, 3, 26))
        decide_at = self.local(2024, 3, 28, 10, 0)
        for n, spec in enumerate(specs):
            if spec.has("close") and not spec.has("pending"):
                plan.at(decide_at + dt.timedelta(minutes=n), self.decide, spec)

        for spec in specs:
            if spec.has("withdraw_pre"):
                plan.at(self.local(2024, 4, 12, 11, 20), self.fire, spec, "withdraw", coordinator=True,
                        reason="The coordinator has moved to another institution; the consortium withdraws.")

        # Pre-proposal evaluation (reviews, consensus, the ranking the CSC approved on 16 May), then the
        # invitations of 20 May, following that ranking.
        self.plan_pre_evaluation(plan, specs)
        invite_at = self.local(2024, 5, 20, 10, 0)
        for n, spec in enumerate(specs):
            if spec.has("invite"):
                plan.at(invite_at + dt.timedelta(minutes=n), self.decide_on_ranking, spec, "pre", "invite",
                        "CSC decision of 16 May 2024: rank {rank} of {of} on the approved pre-proposal ranking; "
                        "invited to the full-proposal stage")
            elif spec.has("not_invite"):
                plan.at(invite_at + dt.timedelta(minutes=n), self.decide_on_ranking, spec, "pre", "not_invite",
                        "CSC decision of 16 May 2024: rank {rank} of {of} on the approved pre-proposal ranking, "
                        "below the invitation line (invited requests of about three times the committed budget)")

        # Full proposals.
        for spec in specs:
            if spec.has("start_full"):
                start = self.working_time(dt.date(2024, 5, 21), dt.date(2024, 6, 3))
                plan.at(start, self.fire, spec, "start_full", coordinator=True)
                plan.at(start + dt.timedelta(days=self.rng.randint(1, 4), hours=1), self.revise_full, spec)
            if spec.has("submit_full"):
                days_before = min(int(self.rng.expovariate(1 / 2)), 9)
                day = dt.date(2024, 6, 20) - dt.timedelta(days=days_before)
                when = self.local(day.year, day.month, day.day, self.rng.randint(8, 16), self.rng.randint(0, 59))
                plan.at(min(when, deadline_full - dt.timedelta(minutes=3)), self.fire, spec, "submit_full",
                        coordinator=True)
        close_full_at = self.local(2024, 6, 21, 9, 0)
        for n, spec in enumerate(specs):
            if spec.has("close_full"):
                plan.at(close_full_at + dt.timedelta(minutes=n), self.close, spec, "full")
            elif spec.has("lapse_full"):
                plan.at(close_full_at + dt.timedelta(minutes=n), self.fire, spec, "lapse",
                        reason="full proposal not submitted before the deadline")
        self.schedule_checks(plan, specs, "full", dt.date(2024, 6, 24), dt.date(2024, 7, 5))
        decide_full_at = self.local(2024, 7, 8, 10, 0)
        late_at = self.local(2024, 9, 2, 10, 0)  # after the late national checks (see schedule_checks)
        for n, spec in enumerate(specs):
            if spec.has("close_full") and not spec.has("pending_full"):
                plan.at((late_at if spec.has("late_full") else decide_full_at) + dt.timedelta(minutes=n),
                        self.decide, spec)
        for spec in specs:
            if spec.has("withdraw_full"):
                plan.at(self.local(2024, 7, 22, 15, 5), self.fire, spec, "withdraw", coordinator=True,
                        reason="A key clinical partner had to leave the consortium; the coordinator withdraws.")

        # Peer review (July to mid-August), rebuttal (19-26 August), panel (16-18 September), CSC ranking
        # (8 October). The order of the recommended proposals on the full-stage ranking:
        ranked = [s for s in specs if s.has("recommend")]
        self.rng.shuffle(ranked)
        ranked.sort(key=lambda s: ("select" not in s.steps, "not_fund" in s.steps, "reserve" in s.steps))
        self.plan_full_evaluation(plan, specs, ranked)
        for n, spec in enumerate(specs):
            if spec.has("close_rebuttal"):
                plan.at(self.local(2024, 8, 26, 17, 5) + dt.timedelta(minutes=n), self.fire, spec,
                        "close_rebuttal")
        panel_at = self.local(2024, 9, 18, 16, 0)
        for n, spec in enumerate(specs):
            for trigger in ("recommend", "not_recommend"):
                if spec.has(trigger):
                    plan.at(panel_at + dt.timedelta(minutes=n), self.fire, spec, trigger,
                            reason=self.panel_reason(self.verdicts[(id(spec), "full")]))
        csc_at = self.local(2024, 10, 8, 14, 0)
        for n, spec in enumerate(specs):
            when = csc_at + dt.timedelta(minutes=n)
            if spec.has("select"):
                plan.at(when, self.decide_on_ranking, spec, "full", "select",
                        "Rank {rank} of {of}: every partner fits its funder's remaining budget")
            elif spec.has("reserve"):
                plan.at(when, self.decide_on_ranking, spec, "full", "place_in_reserve",
                        "Rank {rank} of {of}: a funder's budget is exhausted; on the reserve list")
            elif spec.has("not_fund"):
                plan.at(when, self.decide_on_ranking, spec, "full", "not_fund",
                        "Rank {rank} of {of}: no funding available for two of the partners")
        for spec in specs:
            if spec.has("fund"):
                plan.at(self.working_time(dt.date(2024, 12, 2), dt.date(2024, 12, 13)), self.fire, spec, "fund",
                        reason="Consortium agreement signed and all national grant agreements concluded")
            if spec.has("reserve_not_fund"):
                plan.at(self.local(2024, 12, 16, 10, 0), self.fire, spec, "not_fund",
                        reason="The reserve list closed without budget becoming available")
        plan.run()

    def make_reviewers(self, call: Call) -> None:
        """The demo reviewers are reviewers of the open call too (nothing to review there yet)."""
        for email in REVIEWERS:
            grant_role(self.session, self.admin, self.users[email], "reviewer", call.id)

    # -- the evaluation (reviews/) ----------------------------------------------------------------------

    def plan_panel(self, plan: _Plan) -> None:
        """The secretariat invites the panel on 11 March 2024; in the following days each member accepts,
        completes the profile (expertise keywords drawn from the call's themes, organisation, country,
        institutional e-mail domain) and accepts the confidentiality declaration."""
        rng = self.review_rng
        keywords = sorted({k.strip() for *_rest, kw in THEMES for k in kw.split(";") if k.strip()}, key=str.casefold)
        rng.shuffle(keywords)
        members = [PanelMember(email, _ACCOUNT[email][2], *PANEL_PROFILES[email][:2],
                               f"{PANEL_PROFILES[email][2]}.{PANEL_DOMAIN}") for email in REVIEWERS]
        for org in EXPERT_ORGS:
            name = self.person(org.country, rng)
            domain = f"{org.slug}.{PANEL_DOMAIN}"
            members.append(PanelMember(f"{_mail_local(name)}@{domain}", name, org.name, org.country, domain))
        for n, member in enumerate(members):
            member.keywords = keywords[n::len(members)]
        self.panel = members
        plan.at(self.local(2024, 3, 11, 9, 50), self.create_panel_accounts)
        plan.at(self.local(2024, 3, 11, 10, 0), self.invite_panel)
        for member in members:
            plan.at(self.working_time(dt.date(2024, 3, 12), dt.date(2024, 3, 14), rng=rng), self.join_panel, member)

    def create_panel_accounts(self) -> None:
        for member in self.panel:
            if member.email in _ACCOUNT:
                self.account(member.email, organisation=member.organisation, country=member.country)

    def invite_panel(self) -> None:
        for member in self.panel:
            tokens: list[str] = []

            def link(token: str, tokens=tokens) -> str:
                tokens.append(token)
                return f"https://{DOMAIN}/reviewer/invitation/{token}"

            self.rv.pool.invite_reviewer(self.session, self.secretariat, self.call, email=member.email,
                                         name=member.name, link=link)
            member.token = tokens[0]
            if member.email not in _ACCOUNT:
                self.extra_accounts["reviewers without a password"] += 1

    def join_panel(self, member: PanelMember) -> None:
        s, pool = self.session, self.rv.pool
        user = find_user(s, member.email)
        pool.accept_reviewer_invitation(s, user, member.token)
        pool.update_profile(s, user, self.call, user, keywords=member.keywords, organisation=member.organisation,
                            country=member.country, email_domain=member.domain)
        pool.accept_declaration(s, user, self.call, confirmed=True)
        member.user = user

    def weighted(self, scores: dict[str, float]) -> float:
        return sum(c.weight * scores[c.key] for c in self.definition.evaluation.criteria)

    def verdict(self, total: float, recommendation: str | None) -> Verdict:
        """Scores adding up to `total`: every criterion at or above the threshold of 3, except one at 2.5
        when the panel does not recommend the proposal."""
        rng, keys = self.review_rng, [c.key for c in self.definition.evaluation.criteria]
        if recommendation == "not_recommended":
            weak = rng.choice(keys)
            scores = {weak: 2.5} | _split(total - 2.5, [k for k in keys if k != weak], rng, floor=3.0)
            scores = {k: scores[k] for k in keys}
        else:
            scores = _split(total, keys, rng, floor=3.0)
        return Verdict(scores, self.weighted(scores), recommendation)

    def review_form(self, spec: Spec, verdict: Verdict) -> dict:
        """One reviewer's form: scores in half points around the panel's eventual view, a comment per
        criterion that fits the score, and the recommendation the scores support."""
        rng, ev = self.review_rng, self.definition.evaluation
        scores = {c.key: min(5.0, max(0.0, verdict.scores[c.key] + rng.choice(
            (-1.0, -0.5, -0.5, 0.0, 0.0, 0.0, 0.5, 0.5, 1.0)))) for c in ev.criteria}
        if rng.random() < 0.12:  # now and then a reviewer sees one criterion quite differently
            key = rng.choice(list(scores))
            scores[key] = min(5.0, max(0.0, scores[key] + rng.choice((-1.5, 1.5))))
        comments = {key: rng.choice(COMMENTS[key][_level(value)]).format(condition=spec.theme[2])
                    for key, value in scores.items()}
        total = self.weighted(scores)
        if all(scores[c.key] >= c.threshold for c in ev.criteria) and total >= ev.total_threshold:
            recommendation = "recommended" if total >= ev.total_threshold + 2 else "recommended_if_funds"
        else:
            recommendation = "not_recommended"
        return {"scores": scores, "comments": comments, "recommendation": recommendation}

    def plan_reviews(self, plan: _Plan, spec: Spec, stage: str, first: dt.date, last: dt.date) -> None:
        verdict = self.verdicts[(id(spec), stage)]
        for k in range(3):
            when = self.working_time(first, last, rng=self.review_rng)
            plan.at(when, self.write_review, spec, stage, k, self.review_form(spec, verdict))

    def plan_pre_evaluation(self, plan: _Plan, specs: list[Spec]) -> None:
        """Every eligible pre-proposal still in the running on 15 April gets three reviewers (automatic
        assignment); the reviews come in until 8 May; the panel's consensus on 13 May; the ranking list is
        built on 15 May and approved by the CSC on 16 May. The invited proposals lead the ranking, the two
        still waiting for the decision come next, the not invited ones last."""
        rng = self.review_rng
        reviewed = [s for s in specs if s.has("eligible") and not s.has("withdraw_pre")]
        invited = [s for s in reviewed if s.has("invite")]
        rng.shuffle(invited)
        waiting = [s for s in reviewed if not s.has("invite") and not s.has("not_invite")]
        declined = [s for s in reviewed if s.has("not_invite")]
        for i, spec in enumerate(invited):
            self.verdicts[(id(spec), "pre")] = self.verdict(_half(14.5 - 3.0 * i / max(1, len(invited) - 1)),
                                                            "recommended")
        for spec in waiting:
            self.verdicts[(id(spec), "pre")] = self.verdict(11.0, "recommended_if_funds")
        for j, spec in enumerate(declined):
            self.verdicts[(id(spec), "pre")] = self.verdict(
                max(8.0, 10.5 - 0.5 * j), "recommended_if_funds" if j < 2 else "not_recommended")
        plan.at(self.local(2024, 4, 15, 10, 0), self.assign_automatically, "pre")
        for spec in reviewed:
            self.plan_reviews(plan, spec, "pre", dt.date(2024, 4, 16), dt.date(2024, 5, 8))
        order = invited + waiting + declined
        for n, spec in enumerate(order):
            plan.at(self.local(2024, 5, 13, 9, 0) + dt.timedelta(minutes=10 * n), self.enter_consensus, spec, "pre")
        plan.at(self.local(2024, 5, 15, 10, 0), self.build_ranking, "pre", order)
        plan.at(self.local(2024, 5, 16, 17, 30), self.approve_ranking, "pre")

    def plan_full_evaluation(self, plan: _Plan, specs: list[Spec], ranked: list[Spec]) -> None:
        """The full proposals under review on 9 July get three reviewers each (automatic assignment); the
        reviews are in by 14 August; the rebuttal window opens on 19 August and most coordinators answer; the
        panel's consensus on 16 September; the ranking list built on 20 September and approved by the CSC on
        8 October. `ranked` is the order of the recommended proposals. Of the two proposals left with the
        panel, one is recommended if funds are available (last on the list), the other not recommended.
        The two proposals whose eligibility was confirmed late get three experts on 3 September and, on 23
        September, demo reviewers whose reviews are still open."""
        rng = self.review_rng
        reviewed = [s for s in specs if s.has("full_eligible") and not s.has("withdraw_full")]
        waiting = [s for s in reviewed if s.has("close_rebuttal") and not s.has("recommend")
                   and not s.has("not_recommend")]
        order = ranked + waiting[:1]
        for i, spec in enumerate(order):
            total = _half(14.5 - 4.0 * i / max(1, len(order) - 1))
            self.verdicts[(id(spec), "full")] = self.verdict(
                total, "recommended" if total >= 12 else "recommended_if_funds")
        for spec in [s for s in reviewed if s.has("not_recommend")] + waiting[1:]:
            self.verdicts[(id(spec), "full")] = self.verdict(rng.choice((8.5, 9.0, 9.5)), "not_recommended")
        for spec in reviewed:  # still in rebuttal or under review: what the reviews hover around
            if (id(spec), "full") not in self.verdicts:
                self.verdicts[(id(spec), "full")] = self.verdict(rng.choice((11.0, 11.5, 12.0, 12.5, 13.0)), None)
        plan.at(self.local(2024, 7, 9, 10, 0), self.assign_automatically, "full")
        late = [s for s in reviewed if s.has("late_full")]
        for spec in reviewed:
            if spec.has("late_full"):
                self.plan_reviews(plan, spec, "full", dt.date(2024, 9, 4), dt.date(2024, 9, 20))
            else:
                self.plan_reviews(plan, spec, "full", dt.date(2024, 7, 15), dt.date(2024, 8, 14))
        experts = [m.email for m in self.panel if m.email not in _ACCOUNT]
        for j, spec in enumerate(late):
            plan.at(self.local(2024, 9, 3, 10, 0) + dt.timedelta(minutes=j), self.assign_manually, spec,
                    rng.sample(experts, 3))
            extra = (REVIEWERS[0], REVIEWERS[2]) if j % 2 == 0 else (REVIEWERS[1],)
            plan.at(self.local(2024, 9, 23, 11, 0) + dt.timedelta(minutes=j), self.assign_manually, spec, extra)
            form = self.review_form(spec, self.verdicts[(id(spec), "full")])
            first = list(form["scores"])[0]
            draft = {"scores": dict(list(form["scores"].items())[:2]), "comments": {first: form["comments"][first]},
                     "recommendation": None}
            plan.at(self.working_time(dt.date(2024, 9, 24), dt.date(2024, 9, 30), rng=rng), self.write_review,
                    spec, "full", extra[0], draft, submit=False)

        rebuttal = [s for s in specs if s.has("open_rebuttal")]
        plan.at(self.local(2024, 8, 19, 9, 0), self.open_rebuttal_window, rebuttal)
        for spec in rebuttal:
            if spec.who == "coordinator2" or rng.random() < 0.75:
                self.rebutted.add(id(spec))
                plan.at(self.working_time(dt.date(2024, 8, 20), dt.date(2024, 8, 23), rng=rng), self.rebut, spec)
        for n, spec in enumerate(s for s in reviewed if s.has("close_rebuttal")):
            plan.at(self.local(2024, 9, 16, 9, 0) + dt.timedelta(minutes=15 * n), self.enter_consensus, spec,
                    "full")
        plan.at(self.local(2024, 9, 20, 10, 0), self.build_ranking, "full", order)
        plan.at(self.local(2024, 10, 8, 13, 30), self.approve_ranking, "full")

    def assign_automatically(self, stage: str) -> None:
        s, assignment = self.session, self.rv.assignment
        preview = assignment.propose_assignment(s, self.secretariat, self.call, load_cap=LOAD_CAP[stage],
                                                stage=stage)
        if preview.uncovered:  # pragma: no cover - the panel is large enough and has no conflicts
            raise RuntimeError("the demo panel does not cover " + "; ".join(
                f"{u.acronym} ({u.reason})" for u in preview.uncovered))
        assignment.accept_preview(s, self.secretariat, self.call, preview)

    def assign_manually(self, spec: Spec, emails: list[str]) -> None:
        proposal = self.session.get(Proposal, spec.proposal_id)
        for email in emails:
            self.rv.assignment.assign_reviewer(self.session, self.secretariat, proposal,
                                               find_user(self.session, email))

    def write_review(self, spec: Spec, stage: str, who: int | str, form: dict, *, submit: bool = True) -> None:
        """The reviewer of the proposal's `who`-th assignment of the stage (or the one with that e-mail) fills
        in the form and submits it (or, with `submit=False`, only saves it as a draft)."""
        s, scoring = self.session, self.rv.scoring
        proposal = s.get(Proposal, spec.proposal_id)
        assignments = self.rv.assignment.assignments_of(s, proposal, stage)
        if isinstance(who, int):
            assignment = assignments[who]
        else:
            assignment = next(a for a in assignments if a.reviewer.email == who)
        (scoring.submit_review if submit else scoring.save_review)(s, assignment.reviewer, assignment, **form)

    def enter_consensus(self, spec: Spec, stage: str) -> None:
        verdict = self.verdicts[(id(spec), stage)]
        proposal = self.session.get(Proposal, spec.proposal_id)
        self.rv.aggregation.enter_consensus(self.session, self.secretariat, proposal, scores=verdict.scores,
                                            recommendation=verdict.recommendation,
                                            summary=self.summary(spec, stage, verdict))

    def summary(self, spec: Spec, stage: str, verdict: Verdict) -> str:
        ev = self.definition.evaluation
        best = max(ev.criteria, key=lambda c: verdict.scores[c.key])
        worst = min(ev.criteria, key=lambda c: verdict.scores[c.key])
        if stage == "pre":
            opening = "The panel scored the pre-proposal on the full-stage criteria, from its three reviews."
        elif id(spec) in self.rebutted:
            opening = "The panel discussed the three reviews together with the consortium's rebuttal."
        else:
            opening = "The panel discussed the three reviews; the consortium did not submit a rebuttal."
        conclusion = {
            "recommended": "The panel recommends the proposal.",
            "recommended_if_funds": "The panel recommends the proposal if funds are available.",
            "not_recommended": f"The panel does not recommend the proposal: {worst.name} is below its threshold "
                               f"of {worst.threshold:g}.",
        }[verdict.recommendation]
        return (f"{opening} Strongest: {best.name} ({verdict.scores[best.key]:g}); weakest: {worst.name} "
                f"({verdict.scores[worst.key]:g}). Consensus total {verdict.total:g} of {ev.max_total:g}. "
                f"{conclusion}")

    def panel_reason(self, verdict: Verdict) -> str:
        ev = self.definition.evaluation
        total = f"Panel consensus {verdict.total:g}/{ev.max_total:g}"
        if verdict.recommendation == "not_recommended":
            weak = [c for c in ev.criteria if verdict.scores[c.key] < c.threshold]
            return f"{total}; {', '.join(c.name for c in weak)} below the threshold of {weak[0].threshold:g}/5"
        label = {"recommended": "recommended", "recommended_if_funds": "recommended if funds are available"}
        return f"{total}, every criterion at or above its threshold: {label[verdict.recommendation]}"

    def build_ranking(self, stage: str, order: list[Spec]) -> None:
        """The list from the consensus; where everything else is equal, the panel voted in `order`."""
        self.rv.ranking.build_ranking(self.session, self.secretariat, self.call, stage,
                                      panel_vote=[spec.proposal_id for spec in order])

    def approve_ranking(self, stage: str) -> None:
        ranking = self.rv.ranking.ranking_of(self.session, self.call, stage)
        self.rv.ranking.approve_ranking(self.session, self.secretariat, ranking)

    def decide_on_ranking(self, spec: Spec, stage: str, trigger: str, reason: str) -> None:
        """Fire `trigger` with a reason naming the proposal's place on the stage's approved ranking list."""
        ranking = self.rv.ranking.ranking_of(self.session, self.call, stage)
        rank = {e.proposal_id: e.rank for e in ranking.entries}
        transition(self.session, self.secretariat, spec.proposal_id, trigger,
                   reason=reason.format(rank=rank[spec.proposal_id], of=len(rank)))

    def open_rebuttal_window(self, expected: list[Spec]) -> None:
        result = self.rv.release.open_rebuttal(self.session, self.secretariat, self.call)
        if sorted(result.proposals) != sorted(spec.proposal_id for spec in expected):  # pragma: no cover
            raise RuntimeError("the rebuttal window opened for other proposals than the demo planned")

    def rebut(self, spec: Spec) -> None:
        """The coordinator answers the two criteria the panel will find weakest."""
        s = self.session
        proposal = s.get(Proposal, spec.proposal_id)
        verdict = self.verdicts[(id(spec), "full")]
        weakest = sorted(verdict.scores, key=lambda k: (verdict.scores[k], k))[:2]
        text = "\n\n".join([
            f"We thank the three reviewers for their careful and constructive assessment of {proposal.acronym}.",
            *(REBUTTAL_ANSWERS[k].format(condition=spec.theme[2]) for k in weakest),
            "None of these points needs a change to the objectives or to the consortium; we will report on each "
            "of them in the first annual report.",
        ])
        submit_rebuttal(s, proposal.coordinator, proposal, text)

    def coordinator(self, spec: Spec) -> User:
        lead = spec.partners[0]
        user = self.users.get(lead.pi_email)
        if user is None:
            if lead.pi_email in _ACCOUNT:
                user = self.account(lead.pi_email, organisation=lead.org.name, country=lead.org.country)
            else:
                user = create_user(self.session, None, email=lead.pi_email, name=lead.pi_name, password=None,
                                   confirmed=True, organisation=lead.org.name, country=lead.org.country)
                self.users[lead.pi_email] = user
                self.extra_accounts["coordinators without a password"] += 1
        return user

    def create(self, spec: Spec, call: Call | None = None) -> None:
        s = self.session
        call = call or self.call
        user = self.coordinator(spec)
        acronym, title, _condition, keywords = spec.theme
        proposal = create_proposal(s, user, call, acronym=acronym, title=title)
        spec.proposal_id = proposal.id
        fields = {"keywords": keywords, "topic": spec.topic}
        if not spec.incomplete:
            fields.update(abstract=self.abstract(spec, "pre"), duration_months=self.rng.choice((36, 36, 36, 30)))
        update_proposal(s, user, proposal, **fields)
        funder_ids = {cf.funder.acronym: cf.funder_id for cf in call.funders}
        for p in spec.partners:
            add_partner(s, user, proposal, PartnerData(
                organisation=p.org.name, country=p.org.country, pi_name=p.pi_name, pi_email=p.pi_email,
                partner_type=p.org.kind, region=p.org.region, funder_id=funder_ids.get(p.org.funder),
                own_funded=p.org.funder is None, budget=dict(p.budget),
            ))

    def invite_co_applicant(self, spec: Spec) -> None:
        """The coordinator invites a partner PI to edit the proposal. There is no operation for members
        yet, so this writes the row with the access check and the audit event an operation would write."""
        s = self.session
        proposal = s.get(Proposal, spec.proposal_id)
        user = self.account(CO_APPLICANT, organisation="Tartu Ülikool", country="EE")
        coordinator = proposal.coordinator
        require(can(coordinator, "proposal.manage_members", proposal))
        proposal.members.append(ProposalMember(user=user, can_edit=True))
        s.flush()
        audit.record(s, coordinator, "proposal.member_added", proposal,
                     after={"user_id": user.id, "email": user.email, "can_edit": True})

    def fire(self, spec: Spec, trigger: str, *, coordinator: bool = False, reason: str | None = None) -> None:
        proposal = self.session.get(Proposal, spec.proposal_id)
        actor = proposal.coordinator if coordinator else self.secretariat
        transition(self.session, actor, spec.proposal_id, trigger, reason=reason)

    def revise_pre(self, spec: Spec) -> None:
        """Between a reopen and the new submission: the coordinator trims a partner's budget."""
        s = self.session
        proposal = s.get(Proposal, spec.proposal_id)
        partner = max((p for p in proposal.partners if p.requests_funding), key=lambda p: p.requested_amount)
        self.rebudget(proposal.coordinator, partner, 0.95)

    def revise_full(self, spec: Spec) -> None:
        """The full proposal: a longer abstract and refined (never higher) budgets."""
        s = self.session
        proposal = s.get(Proposal, spec.proposal_id)
        user = proposal.coordinator
        update_proposal(s, user, proposal, abstract=self.abstract(spec, "full"),
                        keywords=proposal.keywords + "; " + self.rng.choice(
                            ("real-world data", "clinical decision support", "health economics",
                             "patient-reported outcomes")))
        funded = [p for p in proposal.partners if p.requests_funding]
        for partner in self.rng.sample(funded, k=min(2, len(funded))):
            self.rebudget(user, partner, self.rng.uniform(0.9, 0.98))

    def rebudget(self, user: User, partner: Partner, factor: float) -> None:
        budget = dict(partner.budget)
        budget["personnel"] = 100 * round(budget["personnel"] * factor / 100)
        update_partner(self.session, user, partner, PartnerData(
            organisation=partner.organisation, country=partner.country, pi_name=partner.pi_name,
            pi_email=partner.pi_email, partner_type=partner.partner_type, region=partner.region,
            funder_id=partner.funder_id, own_funded=partner.own_funded, budget=budget,
        ))

    def close(self, spec: Spec, stage: str) -> None:
        """What close_stage does for one submitted proposal (see the module docstring)."""
        proposal = transition(self.session, self.secretariat, spec.proposal_id, "close_submission")
        open_checks(self.session, proposal, stage)

    def schedule_checks(self, plan: _Plan, specs: list[Spec], stage: str, first: dt.date, last: dt.date) -> None:
        closing, pending, failing = (("close", "pending", "ineligible") if stage == "pre"
                                     else ("close_full", "pending_full", "full_ineligible"))
        for spec in specs:
            if not spec.has(closing):
                continue
            plan.at(self.working_time(first, first + dt.timedelta(days=6)), self.sign, spec, stage, None,
                    "eligible", None)
            window = (first, last)
            if stage == "full" and spec.has("late_full"):  # a national check took until the end of August
                window = (dt.date(2024, 8, 26), dt.date(2024, 8, 30))
            for position, p in enumerate(spec.partners, 1):
                if p.org.funder is None:
                    continue
                if spec.has(pending) and p.org.funder in DEMO_OFFICER_FUNDERS:
                    continue  # waiting for a demo officer: try it
                verdict, reason = "eligible", None
                if spec.has(failing) and position == spec.ineligible_position:
                    verdict, reason = "ineligible", INELIGIBLE_REASONS[p.org.funder]
                plan.at(self.working_time(*window), self.sign, spec, stage, position, verdict, reason)

    def sign(self, spec: Spec, stage: str, position: int | None, verdict: str, reason: str | None) -> None:
        s = self.session
        query = select(EligibilityCheck).where(EligibilityCheck.proposal_id == spec.proposal_id,
                                               EligibilityCheck.stage == stage)
        if position is None:
            check = s.scalar(query.where(EligibilityCheck.partner_id.is_(None)))
            actor = self.secretariat
        else:
            check = s.scalar(query.join(Partner, Partner.id == EligibilityCheck.partner_id)
                             .where(Partner.position == position))
            actor = self.officer_of[spec.partners[position - 1].org.funder]
        sign_off(s, actor, check.id, verdict, reason)

    def decide(self, spec: Spec) -> None:
        decide_eligibility(self.session, self.secretariat, spec.proposal_id)

    # -- the open call ----------------------------------------------------------------------------------

    def make_open_call(self) -> None:
        """A copy of the EP PerMed call whose pre-proposal stage is open now, with a draft to submit."""
        s = self.session
        zone = ZoneInfo(self.zone)
        today = utcnow().astimezone(zone).date()  # the real date (or the CLI's --now)

        def day(offset: int, hh: int, mm: int = 0) -> dt.datetime:
            d = today + dt.timedelta(days=offset)
            return dt.datetime(d.year, d.month, d.day, hh, mm)

        data = self.definition.model_dump()
        data["code"], data["title"] = OPEN_CODE, OPEN_TITLE
        data["description"] = ("A copy of the EP PerMed JTC2024 call whose pre-proposal stage is open now, so "
                               "that visitors of the demo can draft and submit a proposal. " + data["description"])
        pre, full = data["stages"]
        pre["opens"], pre["deadline"], pre["review_deadline"] = day(-14, 0), day(30, 17), day(75, 17)
        full["opens"], full["deadline"], full["review_deadline"] = day(90, 0), day(120, 17), day(180, 17)
        definition = CallDef.model_validate(data)
        with frozen(from_local(day(-15, 10), self.zone)):
            self.open_call = load_call(s, self.admin, definition).call
            grant_role(s, self.admin, self.secretariat, "secretariat", self.open_call.id)
            for acronym, officer in sorted(self.officer_of.items()):
                funder_id = next(cf.funder_id for cf in self.open_call.funders if cf.funder.acronym == acronym)
                grant_role(s, self.admin, officer, "officer", self.open_call.id, funder_id)
            self.make_reviewers(self.open_call)
        lead = ORG_BY_NAME["Hospital Clínic de Barcelona"]
        partners = self.consortium(lead=lead, required=("ANR", "BMBF"),
                                   pinned={lead.name: (_ACCOUNT[COORDINATOR_1][2], COORDINATOR_1)},
                                   funds_left=None)
        used = [sp.theme for sp in self.specs_2024]
        theme = next(t for t in THEMES if t not in used)
        spec = Spec("draft", (), "coordinator1", theme, TOPICS[2], partners)
        with frozen(from_local(day(-6, 15, 20), self.zone)):
            self.create(spec, self.open_call)
        self.open_spec = spec

    # -- the report -------------------------------------------------------------------------------------

    def evaluation_report(self) -> list[str]:
        s, zone, m = self.session, self.call.time_zone, self.rv.models

        def count(model, stage: str, *where) -> int:
            query = select(func.count()).select_from(model).where(model.stage == stage, *where)
            if model is m.Review:
                query = query.join(Proposal, Proposal.id == m.Review.proposal_id).where(
                    Proposal.call_id == self.call.id)
            else:
                query = query.where(model.call_id == self.call.id)
            return s.scalar(query)

        lines = [f"  {len(self.panel)} reviewers ({len(REVIEWERS)} of them demo accounts), each with a profile and "
                 "the confidentiality declaration accepted"]
        for stage in ("pre", "full"):
            ranking = self.rv.ranking.ranking_of(s, self.call, stage)
            lines.append(
                f"  {stage} stage: {count(m.ReviewAssignment, stage)} assignments, "
                f"{count(m.Review, stage, m.Review.status == 'submitted')} reviews submitted and "
                f"{count(m.Review, stage, m.Review.status == 'draft')} in draft, the panel's consensus on "
                f"{count(m.PanelConsensus, stage)} proposals, a ranking list of {len(ranking.entries)} approved on "
                f"{format_instant(ranking.approved_at, zone, 'd MMM y')}")
        return lines

    def report(self) -> str:
        s = self.session
        lines = ["Demo loaded.", "", "Calls:"]
        for call in (self.call, self.open_call):
            n = s.scalar(select(func.count(Proposal.id)).where(Proposal.call_id == call.id))
            stages = "; ".join(
                f"{st.kind} stage {format_instant(st.opens_at, call.time_zone, 'd MMM y')} to "
                f"{format_instant(st.deadline, call.time_zone, 'd MMM y, HH:mm zzz')}" for st in call.stages)
            lines.append(f"  {call.code}: {call.title}")
            lines.append(f"    {n} proposal{'s' if n != 1 else ''}; {stages}")
        lines += ["", f"Proposals per state ({self.call.code}, then {self.open_call.code}):"]
        counts = state_counts(s, self.call)
        open_counts = state_counts(s, self.open_call)
        width = max(len(st.name) for st in states_for(Variant(True, True)))
        for st in states_for(Variant(True, True)):
            extra = f"  (+{open_counts[st.name]} in the open call)" if open_counts[st.name] else ""
            lines.append(f"  {st.name:<{width}}  {counts[st.name]:>3}{extra}")
        lines.append(f"  {'total':<{width}}  {sum(counts.values()):>3}")
        lines += ["", f"Evaluation ({self.call.code}):", *self.evaluation_report()]
        lines += ["", accounts_table()]
        if self.extra_accounts:
            lines += ["", "Other accounts have no password and cannot log in: " + ", ".join(
                f"{n} {what}" for what, n in sorted(self.extra_accounts.items())) + "."]
        return "\n".join(lines)
