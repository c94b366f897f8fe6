"""Admin registrations for the events backend: browse what the load tests created."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from backend import models


@admin.register(models.User)
class PlatformUserAdmin(UserAdmin):
    list_display = ("email", "first_name", "last_name", "email_verified", "is_active", "is_staff")
    list_filter = ("email_verified", "is_active", "is_staff", "is_superuser")
    search_fields = ("email", "first_name", "last_name")
    ordering = ("email",)
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Platform", {"fields": ("email_verified", "preferred_name", "pronouns", "bio", "language")}),
    )


@admin.register(models.City)
class CityAdmin(admin.ModelAdmin):
    list_display = ("name", "country", "timezone")
    search_fields = ("name", "country")


class StaffInline(admin.TabularInline):
    model = models.OrganizationStaff
    raw_id_fields = ("user",)
    extra = 0


@admin.register(models.Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "visibility", "owner", "created_at")
    search_fields = ("name", "slug")
    raw_id_fields = ("owner",)
    inlines = [StaffInline]


@admin.register(models.OrganizationMember)
class OrganizationMemberAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "status", "tier")
    list_filter = ("status",)
    list_select_related = ("user", "organization", "tier")
    raw_id_fields = ("user",)
    search_fields = ("user__email", "organization__name")


admin.site.register(models.MembershipTier)


class TicketTierInline(admin.TabularInline):
    model = models.TicketTier
    fields = ("name", "payment_method", "price_type", "price", "pwyc_min", "pwyc_max", "total_quantity",
              "quantity_sold")
    readonly_fields = ("quantity_sold",)
    extra = 0


@admin.register(models.Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "start", "status", "requires_ticket", "max_attendees")
    list_filter = ("status", "requires_ticket", "event_type", "visibility")
    list_select_related = ("organization",)
    search_fields = ("name", "slug")
    inlines = [TicketTierInline]


@admin.register(models.TicketTier)
class TicketTierAdmin(admin.ModelAdmin):
    list_display = ("name", "event", "payment_method", "price_type", "total_quantity", "quantity_sold")
    list_select_related = ("event",)
    readonly_fields = ("quantity_sold",)


@admin.register(models.Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "tier", "user", "status", "price_paid", "created_at")
    list_filter = ("status",)
    list_select_related = ("event", "tier", "user")
    raw_id_fields = ("user", "event", "tier")
    search_fields = ("user__email",)


@admin.register(models.EventRSVP)
class EventRSVPAdmin(admin.ModelAdmin):
    list_display = ("event", "user", "status", "updated_at")
    list_filter = ("status",)
    list_select_related = ("event", "user")
    raw_id_fields = ("user", "event")
    search_fields = ("user__email",)


class OptionInline(admin.TabularInline):
    model = models.MultipleChoiceOption
    extra = 0


@admin.register(models.MultipleChoiceQuestion)
class MultipleChoiceQuestionAdmin(admin.ModelAdmin):
    list_display = ("question", "questionnaire", "is_mandatory", "allow_multiple_answers")
    inlines = [OptionInline]


@admin.register(models.Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "evaluation_mode", "max_attempts")
    list_filter = ("status", "evaluation_mode")


@admin.register(models.OrganizationQuestionnaire)
class OrganizationQuestionnaireAdmin(admin.ModelAdmin):
    list_display = ("questionnaire", "organization", "questionnaire_type", "requires_evaluation")
    filter_horizontal = ("events",)


class EvaluationInline(admin.StackedInline):
    model = models.QuestionnaireEvaluation
    fk_name = "submission"
    raw_id_fields = ("evaluator",)
    extra = 0


@admin.register(models.QuestionnaireSubmission)
class QuestionnaireSubmissionAdmin(admin.ModelAdmin):
    list_display = ("questionnaire", "user", "status", "submitted_at")
    list_filter = ("status",)
    list_select_related = ("questionnaire", "user")
    raw_id_fields = ("user", "event")
    search_fields = ("user__email",)
    inlines = [EvaluationInline]


admin.site.register(models.QuestionnaireSection)
