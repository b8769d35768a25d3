"""Realistic Chinese demo data — staff, customers, contacts, projects, follow-ups, feedback, website chats —
written in bulk.

Customers are written in chunks, each in one transaction with everything that belongs to them, so a chunk is
either wholly there or not at all. Rows go in through the driver's bulk path (executemany on SQLite, COPY on
PostgreSQL): building a Piccolo object per row is several times slower and a million follow-ups is the target.
Ids are reserved before the rows are written — from the sequence on PostgreSQL, and after the current maximum on
SQLite, where the IMMEDIATE transaction keeps every other writer out until the chunk is committed — so contacts,
projects, follow-ups and chat messages can point at what they belong to without reading anything back.

Website chats are written as app.chat.service leaves them: a closed conversation's transcript is one of the
customer's follow-ups, a rating is a feedback record, and a few conversations are still going on when the demo ends.

No audit or search-outbox rows: demo data has no history, and `kehu reindex` indexes everything at once.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import math
import os
import random
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import anyio.to_thread
from faker import Faker
from piccolo.apps.user.tables import BaseUser
from piccolo.table import Table
from pypinyin import Style, lazy_pinyin
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from app import db
from app.accounts.tables import Account, Role
from app.analysis.tables import AdSpend
from app.analysis.tiers import recompute_tiers
from app.chat.service import CHAT_METHOD, CLOSED_BY_STAFF, CLOSED_BY_VISITOR, WEBSITE_CHANNEL, system_text, token_hash
from app.chat.tables import Author, ChatMessage, ChatVisitor, Conversation, Status
from app.customers.normalize import name_key
from app.customers.service import project_contact_moment
from app.customers.tables import Contact, Customer, Kind, Origin, Project, ProjectStatus
from app.db import is_sqlite, transaction
from app.feedback.tables import Feedback, FeedbackStatus
from app.followups.service import due_moment
from app.followups.tables import FollowUp
from app.i18n import gettext
from app.options.tables import OptionItem, OptionKind
from app.regions import PROVINCES
from app.regions import short_name as _short_name

# Place names, searches and campaigns repeat: work each out once.
short_name = functools.cache(_short_name)
_quoted = functools.cache(quote)

# Customers per transaction: big enough for the bulk path to pay off, small enough not to hold SQLite's write
# lock for long while the web application is running.
CHUNK = 2000


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


T = TypeVar("T")


class _Weighted(Generic[T]):
    """Items drawn in proportion to their weights; random.choices would add the weights up again on every draw."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.totals = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect.bisect(self.totals, rng.random() * self.totals[-1])]


DEMO_STAFF: list[tuple[str, str, Role]] = [
    ("wangfang", "王芳", Role.staff),
    ("liqiang", "李强", Role.staff),
    ("chenjing", "陈静", Role.staff),
    ("zhangwei", "张伟", Role.supervisor),
]
ROLE_NAMES = {Role.staff: "业务员", Role.supervisor: "主管", Role.admin: "管理员"}

HOUR = 3600.0
DAY = 24 * HOUR
YEAR = 365 * DAY
SHANGHAI = 8 * HOUR  # Asia/Shanghai has no daylight saving: a fixed offset is exact.

# --- Where customers are -------------------------------------------------------------------------------------

# A Kunming firm: most customers are in Kunming, many elsewhere in Yunnan, the rest spread over the country
# with the neighbouring provinces ahead.
KUNMING_SHARE = 0.42
YUNNAN_SHARE = 0.33
YUNNAN_CITY_WEIGHTS = {"曲靖市": 3.0, "玉溪市": 3.0, "红河哈尼族彝族自治州": 2.5, "大理白族自治州": 2.0}
PROVINCE_WEIGHTS = {
    "四川省": 4.0,
    "贵州省": 4.0,
    "广西壮族自治区": 3.0,
    "广东省": 3.0,
    "重庆市": 2.0,
    "北京市": 2.0,
    "上海市": 2.0,
    "西藏自治区": 1.5,
    "湖南省": 1.5,
    "香港特别行政区": 0.0,
    "澳门特别行政区": 0.0,
    "台湾省": 0.0,
}
COUNTIES = {
    "昆明市": _words(
        "五华区 盘龙区 官渡区 西山区 呈贡区 晋宁区 东川区 安宁市 嵩明县 宜良县 富民县 "
        "石林彝族自治县 禄劝彝族苗族自治县 寻甸回族彝族自治县"
    ),
    "曲靖市": _words("麒麟区 沾益区 马龙区 宣威市 陆良县 师宗县 罗平县 富源县 会泽县"),
    "玉溪市": _words("红塔区 江川区 澄江市 通海县 华宁县 易门县 峨山彝族自治县 新平彝族傣族自治县"),
}
KUNMING_STREETS = _words(
    "北京路 人民中路 人民西路 东风西路 东风东路 滇池路 春城路 金碧路 白塔路 青年路 环城南路 日新中路 广福路 彩云北路 "
    "关上中路 西昌路 学府路 一二一大街 穿金路 北辰大道 昌宏路 锦绣大街 前兴路 二环西路"
)
# Every town has these.
STREETS = _words(
    "人民路 解放路 建设路 中山路 新华路 文化路 胜利路 和平路 团结路 东风路 光明路 青年路 朝阳路 振兴路 环城路 "
    "滨江路 迎宾路 南环路 北环路 工业路 民族路 长安路 兴业路 教育路"
)
AREA_CODES = {
    "昆明市": "0871",
    "曲靖市": "0874",
    "玉溪市": "0877",
    "红河哈尼族彝族自治州": "0873",
    "大理白族自治州": "0872",
    "楚雄彝族自治州": "0878",
    "昭通市": "0870",
    "丽江市": "0888",
    "普洱市": "0879",
    "保山市": "0875",
    "文山壮族苗族自治州": "0876",
    "西双版纳傣族自治州": "0691",
    "成都市": "028",
    "贵阳市": "0851",
    "南宁市": "0771",
    "广州市": "020",
    "深圳市": "0755",
    "重庆市": "023",
    "北京市": "010",
    "上海市": "021",
    "拉萨市": "0891",
    "长沙市": "0731",
}
# Common mainland mobile prefixes; every number made from them passes normalise_mobile.
MOBILE_PREFIXES = _words(
    "139 138 137 136 135 134 150 151 152 157 158 159 182 183 187 188 130 131 132 155 156 185 186 "
    "133 153 180 181 189 177 173 199 191 198 166 176"
)
MAIL_DOMAINS = ["qq.com", "163.com", "126.com", "foxmail.com", "sina.com", "139.com"]

# --- Who customers are ----------------------------------------------------------------------------------------

# Shop names (字号) of made-up companies.
TRADE_NAMES = _words(
    "华信 鑫源 金沙 宏达 滇中 恒泰 云岭 博远 中天 瑞丰 泰和 嘉禾 兴达 永胜 天诚 润泽 昌盛 聚源 远航 通达 盛世 锦程 "
    "荣和 宏远 新锐 利民 安泰 鼎盛 合力 众诚 金马 碧鸡 彩云 高原 南亚 东陆 翠湖 普惠 德润 丰源 山海 长城 银河 "
    "金鼎 宝丰 华泰 正源 恒达 明珠 玉龙 苍山 洱海 抚仙 螺峰 紫云 天泽 宏盛 和信 汇丰 骏达 金诚 祥瑞 同创"
)
# Two of these make a plausible shop name too, for more names than the list above.
TRADE_CHARACTERS = _words(
    "华 鑫 金 宏 恒 泰 云 博 中 天 瑞 丰 和 嘉 兴 达 永 胜 诚 润 泽 昌 盛 聚 源 远 通 锦 荣 新 利 安 鼎 合 众 德 "
    "普 惠 宝 正 明 汇 骏 祥 同 创 信 亿 海 峰 晟 辉 腾 宇 立 建 力 佳 隆 威"
)
DEPARTMENTS = _words("办公室 测绘科 规划科 地籍科 信息中心 执法大队 项目办 工程科")
LEGAL_FORMS = _Weighted(["有限公司", "有限责任公司", "股份有限公司", "集团有限公司"], [55, 25, 12, 8])


@dataclass(frozen=True)
class Segment:
    """A kind of customer: its industry option, how to name one, what they buy and for how much."""

    industry: str
    weight: float
    names: tuple[str, ...]
    titles: tuple[str, ...]
    needs: tuple[str, ...]
    projects: tuple[str, ...]
    habits: tuple[str, ...]
    # Project amounts in yuan, and where the budget band usually sits (0 cheapest … 1 dearest).
    amount: tuple[int, int]
    budget: float
    # Government offices and public institutions: public procurement, and mail on a free mailbox.
    public: bool = False


GOVERNMENT_TITLES = ("局长", "副局长", "科长", "副科长", "主任", "科员", "工程师", "办公室主任")
INSTITUTE_TITLES = ("院长", "副院长", "所长", "主任", "高级工程师", "工程师", "财务科长")
COMPANY_TITLES = _words(
    "董事长 总经理 副总经理 项目经理 工程部经理 采购主管 技术负责人 总工程师 工程师 办公室主任 行政经理"
)
LEADER_TITLES = {"局长", "副局长", "科长", "院长", "所长", "董事长", "总经理", "副总经理", "总工程师", "主任"}
PUBLIC_HABITS = (
    "年度预算制，一般在第四季度招标",
    "通过政府采购网公开招标，价格分占比高",
    "财政资金到位后付款，周期较长",
    "框架协议采购，按年度续签",
    "小额项目走竞争性磋商，金额较小时直接委托",
    "需先入围中介超市，再按项目抽取",
)
COMPANY_HABITS = (
    "按项目节点付款，预付30%",
    "价格敏感，通常比价三家",
    "重视工期，愿意为加急支付溢价",
    "年底集中结算",
    "合同审批需集团总部同意，流程约一个月",
    "长期合作，按季度对账付款",
    "招标采购，最低价中标",
)

ORGANISATIONS = [
    Segment(
        industry="政府机关",
        weight=14,
        names=(
            "{city}自然资源和规划局",
            "{city}住房和城乡建设局",
            "{city}水务局",
            "{city}交通运输局",
            "{city}生态环境局",
            "{city}应急管理局",
            "{city}农业农村局",
            "{city}林业和草原局",
            "{county}自然资源局",
            "{county}住房和城乡建设局",
            "{county}人民政府",
            "{county}交通运输局",
            "{province}自然资源厅",
            "{province}交通运输厅",
            "{province}水利厅",
        ),
        titles=GOVERNMENT_TITLES,
        needs=(
            "需要1:500地形图测绘，约{n}平方公里",
            "国土空间规划编制技术服务",
            "{year}年度国土变更调查",
            "农村房地一体确权登记测绘，约{n}个行政村",
            "地质灾害隐患点排查，约{n}处",
            "城市更新片区现状测量及规划设计",
            "需要实景三维建模，约{n}平方公里",
            "基本农田划定成果核查",
        ),
        projects=(
            "{c}{area}1:500地形测量",
            "{c}{year}年度国土变更调查",
            "{c}房地一体农村不动产确权登记测绘",
            "{c}地质灾害隐患点详细调查",
            "{c}国土空间总体规划编制",
            "{c}{area}实景三维建模",
        ),
        habits=PUBLIC_HABITS,
        amount=(80_000, 3_000_000),
        budget=0.65,
        public=True,
    ),
    Segment(
        industry="事业单位",
        weight=10,
        names=(
            "{province}交通规划设计研究院",
            "{province}地质调查院",
            "{city}城市规划设计研究院",
            "{city}土地储备中心",
            "{city}不动产登记中心",
            "{city}公路局",
            "{c}学院",
            "{c}市第一人民医院",
            "{city}水文水资源局",
        ),
        titles=INSTITUTE_TITLES,
        needs=(
            "新建院区岩土工程勘察",
            "校区扩建需做1:500地形测量和地下管线探测",
            "储备地块勘测定界，约{n}宗",
            "外业测量分包，约{n}平方公里",
            "水文监测站点地形测量",
        ),
        projects=(
            "{c}{area}储备地块勘测定界",
            "{short}新院区岩土工程勘察",
            "{short}地下管线探测",
            "{c}{area}控制测量分包",
        ),
        habits=PUBLIC_HABITS,
        amount=(50_000, 2_000_000),
        budget=0.55,
        public=True,
    ),
    Segment(
        industry="矿业",
        weight=14,
        names=(
            "{c}{w}矿业{form}",
            "{ps}{w}矿业集团有限公司",
            "{c}{w}煤业{form}",
            "{c}{w}有色金属{form}",
            "{c}{w}磷化工{form}",
        ),
        titles=(*COMPANY_TITLES, "矿长", "安全科长"),
        needs=(
            "矿区地质灾害危险性评估",
            "采矿权延续需编制矿产资源开发利用方案",
            "尾矿库安全监测和变形测量",
            "矿山储量年报编制及动态监测测量",
            "矿山地质环境保护与土地复垦方案编制",
            "露天采场1:1000地形测量，约{n}平方公里",
        ),
        projects=(
            "{short}矿区地质灾害危险性评估",
            "{short}尾矿库变形监测",
            "{short}{year}年度储量动态监测",
            "{short}矿山地质环境保护与土地复垦方案",
            "{short}露天采场1:1000地形测量",
        ),
        habits=COMPANY_HABITS,
        amount=(100_000, 3_000_000),
        budget=0.7,
    ),
    Segment(
        industry="房地产开发",
        weight=16,
        names=("{c}{w}房地产开发{form}", "{c}{w}置业{form}", "{ps}{w}地产集团有限公司"),
        titles=(*COMPANY_TITLES, "报建经理", "成本经理"),
        needs=(
            "新建住宅小区规划设计及报建",
            "预售面积测算和竣工实测",
            "场地岩土工程勘察，钻孔约{n}个",
            "基坑监测，工期约{m}个月",
            "规划放线和竣工规划核实测量",
        ),
        projects=(
            "{short}{phase}期住宅小区岩土工程勘察",
            "{short}{phase}期预售面积测算",
            "{short}{phase}期竣工规划核实测量",
            "{short}基坑及周边建筑变形监测",
            "{short}{phase}期规划设计方案",
        ),
        habits=COMPANY_HABITS,
        amount=(50_000, 1_500_000),
        budget=0.5,
    ),
    Segment(
        industry="交通运输",
        weight=9,
        names=("{ps}{w}交通建设集团有限公司", "{c}{w}公路工程{form}", "{c}{w}路桥建设{form}"),
        titles=COMPANY_TITLES,
        needs=(
            "道路改扩建工程带状地形测量，约{n}公里",
            "桥梁施工控制测量",
            "高速公路沿线地质灾害评估",
            "隧道贯通测量和沉降监测",
        ),
        projects=(
            "{c}{road}改扩建工程带状地形测量",
            "{c}{road}桥梁施工控制测量",
            "{c}{road}沿线地质灾害危险性评估",
            "{c}{road}隧道沉降监测",
        ),
        habits=COMPANY_HABITS,
        amount=(100_000, 3_000_000),
        budget=0.65,
    ),
    Segment(
        industry="水利水电",
        weight=7,
        names=("{c}{w}水电开发{form}", "{c}水务投资有限公司", "{c}{w}水利工程{form}"),
        titles=COMPANY_TITLES,
        needs=(
            "水库除险加固工程水下地形测量",
            "河道综合治理工程测量，约{n}公里",
            "水电站库区移民安置规划",
            "灌区续建配套工程勘察设计",
        ),
        projects=(
            "{c}{river}综合治理工程测量",
            "{c}{river}水库除险加固水下地形测量",
            "{short}库区移民安置实物指标调查",
        ),
        habits=COMPANY_HABITS,
        amount=(80_000, 2_500_000),
        budget=0.6,
    ),
    Segment(
        industry="能源电力",
        weight=7,
        names=("{c}{w}新能源{form}", "{c}{w}光伏发电{form}", "{c}{w}风电{form}", "{c}{w}电力{form}"),
        titles=COMPANY_TITLES,
        needs=(
            "光伏电站场址地形测量，约{n}亩",
            "风电场道路和机位勘察",
            "输电线路路径测量，约{n}公里",
            "电站用地勘测定界",
        ),
        projects=(
            "{short}光伏电站场址地形测量",
            "{short}风电场机位岩土工程勘察",
            "{short}110kV送出线路路径测量",
            "{short}电站用地勘测定界",
        ),
        habits=COMPANY_HABITS,
        amount=(50_000, 2_000_000),
        budget=0.55,
    ),
    Segment(
        industry="制造业",
        weight=8,
        names=("{c}{w}建材{form}", "{c}{w}水泥{form}", "{c}{w}机械制造{form}", "{c}{w}化工{form}"),
        titles=COMPANY_TITLES,
        needs=("新建厂房岩土工程勘察", "厂区竣工测量和不动产测绘", "工业园区用地勘测定界"),
        projects=("{short}新建厂房岩土工程勘察", "{short}厂区竣工测量", "{short}厂区不动产测绘"),
        habits=COMPANY_HABITS,
        amount=(30_000, 800_000),
        budget=0.35,
    ),
    Segment(
        industry="农林牧渔",
        weight=6,
        names=("{c}{w}农业科技{form}", "{c}{w}林业开发{form}", "{c}{w}茶业{form}", "{c}{w}花卉{form}"),
        titles=(*COMPANY_TITLES, "基地负责人"),
        needs=("高标准农田建设项目测量，约{n}亩", "林地征占用可行性报告编制", "茶园土地流转面积测量，约{n}亩"),
        projects=("{short}高标准农田建设测量", "{short}使用林地可行性报告", "{short}基地土地流转面积测量"),
        habits=COMPANY_HABITS,
        amount=(20_000, 600_000),
        budget=0.3,
    ),
    Segment(
        industry="其他",
        weight=9,
        names=("{c}{w}建筑工程{form}", "{c}{w}工程咨询{form}", "{c}城市建设投资集团有限公司", "{c}{w}酒店管理{form}"),
        titles=COMPANY_TITLES,
        needs=("工程项目全过程测量服务", "建设用地规划许可报建测绘", "地下管线探测", "房屋安全鉴定"),
        projects=("{short}施工测量服务", "{short}地下管线探测", "{short}房屋安全鉴定", "{c}{area}报建测绘"),
        habits=COMPANY_HABITS,
        amount=(20_000, 1_000_000),
        budget=0.4,
    ),
]
SEGMENTS = _Weighted(ORGANISATIONS, [segment.weight for segment in ORGANISATIONS])
INDIVIDUAL = Segment(
    industry="个人",
    weight=0,
    names=(),
    titles=(),
    needs=(
        "自建房宅基地界址测量",
        "农村自建房设计图纸",
        "房屋面积测量，用于办理不动产证",
        "购房前房屋安全鉴定",
        "承包土地面积测量，约{n}亩",
        "自建房地基勘察",
    ),
    projects=("{name}自建房地基勘察", "{name}宅基地界址测量", "{name}房屋面积测绘", "{name}房屋安全鉴定"),
    habits=("一次性付款，希望尽快出成果", "价格敏感，倾向于口头约定", "通过熟人介绍，看重信任", "分两次付款"),
    amount=(20_000, 80_000),
    budget=0.05,
)
INDIVIDUAL_SHARE = 0.3

AREAS = ("城东片区", "城南片区", "城北片区", "高新区", "经开区", "老城片区", "新区", "滨水片区")
KUNMING_AREAS = ("呈贡新区", "北部新区", "滇池南岸片区", "经开区", "空港经济区", "巫家坝片区", "长水片区")
ROADS = ("环城路", "城区至机场公路", "二级公路", "旅游公路", "产业园区道路", "县乡公路")
RIVERS = ("盘龙江", "南盘江", "金沙江支流", "城区河道", "小河", "东大河")
PHASES = ("一", "二", "三")
NEED_TAILS = ("", "", "", "，希望{m}月前完成", "，预算约{k}万元", "，需要尽快报价", "，要求有甲级测绘资质")
CHARACTERISTICS = _words(
    "决策流程长 价格敏感 重视资质 看重工期 付款及时 回款慢 要求严格 关系型客户 重视售后 技术要求高 "
    "偏好本地单位 多次合作 领导重视 预算充足 对接人变动频繁"
)

# --- How they found us and what became of it ------------------------------------------------------------------

# label → (how often, share that becomes a member, share from external lists). Unknown labels count as 其他.
CHANNELS: dict[str, tuple[float, float, float]] = {
    WEBSITE_CHANNEL: (18, 0.26, 0.12),
    "搜索引擎": (9, 0.23, 0.2),
    "广告": (4, 0.14, 0.35),
    "转介绍": (22, 0.46, 0.1),
    "展会": (8, 0.23, 0.7),
    "电话咨询": (8, 0.28, 0.2),
    "老客户": (16, 0.57, 0.03),
    "招投标平台": (10, 0.28, 0.55),
    "其他": (5, 0.18, 0.65),
}
UTM_CHANNELS = {WEBSITE_CHANNEL, "广告", "搜索引擎"}
UTM_SOURCES = (("baidu", "cpc"), ("baidu", "organic"), ("wechat", "social"), ("zhihu", "social"), ("toutiao", "cpc"))
CAMPAIGN_TOPICS = ("测绘", "地灾评估", "不动产测绘", "规划设计", "岩土勘察")
SEASONS = ("春季", "春季", "春季", "夏季", "夏季", "夏季", "秋季", "秋季", "秋季", "冬季", "冬季", "冬季")

METHOD_WEIGHTS = {"电话": 35, "微信": 30, "拜访": 15, "邮件": 8, CHAT_METHOD: 6, "其他": 6}
FOLLOW_UP_CONTENT: dict[str, tuple[str, ...]] = {
    "电话": (
        "电话联系{who}，了解项目进展，对方表示下周内部开会讨论",
        "电话回访{who}，确认测绘范围约{n}平方公里",
        "电话沟通报价，{who}认为价格偏高，希望再优惠",
        "致电{who}询问招标时间，预计下月挂网",
        "电话通知{who}成果已提交，请安排验收",
        "电话确认{who}收到发票，催收尾款",
    ),
    "拜访": (
        "上门拜访{who}，介绍公司资质和类似项目业绩",
        "到现场踏勘，与{who}确认红线范围和控制点",
        "拜访{who}，递交技术方案和报价单",
        "陪同总工拜访{who}，讨论技术难点",
        "参加{who}组织的项目启动会",
    ),
    "微信": (
        "微信发送公司简介和资质文件给{who}",
        "微信沟通合同条款，对方法务提出修改意见",
        "微信发送成果样图，{who}反馈基本满意",
        "节日微信问候{who}，顺便了解明年计划",
        "微信提醒{who}提供项目红线图和坐标",
    ),
    "邮件": ("邮件发送正式报价单和技术方案", "邮件提交阶段成果报告，请对方审阅", "邮件发送合同扫描件，等待盖章回寄"),
    "在线聊天": (
        "客户通过网站在线咨询测绘收费标准",
        "网站聊天中询问工期和需要准备的资料",
        "在线咨询地质灾害评估的办理流程",
    ),
    "其他": (
        "在行业展会上与{who}交流，互留联系方式",
        "经老客户介绍认识{who}，初步了解需求",
        "在招投标平台看到项目信息，联系{who}确认",
    ),
}
OUTCOMES = (
    "对方有意向，约定下周现场踏勘",
    "已发送报价单，等待反馈",
    "暂无需求，三个月后再联系",
    "价格需要再议，准备调整方案",
    "对方需内部走流程审批",
    "已确认合作，准备签订合同",
    "项目暂停，等待资金落实",
    "对方表示满意，有后续项目会再合作",
    "需补充资质证书复印件",
    "等待招标公告发布",
    "",
)

FEEDBACK: dict[int, tuple[str, ...]] = {
    5: (
        "测绘成果质量很好，工作人员专业负责，按时交付。",
        "项目负责人沟通及时，现场作业规范，非常满意。",
        "报告编制严谨，一次性通过专家评审，感谢团队。",
    ),
    4: (
        "整体满意，成果提交稍有延迟，希望以后提前告知。",
        "服务不错，报价可以再透明一些。",
        "外业效率高，内业成果修改了两次才定稿。",
    ),
    3: ("服务一般，报价解释不够清楚。", "能完成任务，但联系人经常找不到。"),
    2: ("外业人员到场时间多次变更，影响了我们的安排。", "成果格式不符合要求，需要多次沟通。"),
    1: ("成果数据有错误，返工耽误了报建进度，很不满意。", "合同签订后迟迟不开工，希望给个说法。"),
}
RATINGS = _Weighted([5, 4, 3, 2, 1], [45, 30, 13, 7, 5])
REPLIES = {
    True: ("感谢您的认可，我们会继续保持。", "谢谢您的支持，期待下次合作！"),
    False: (
        "非常抱歉给您带来不便，已安排项目负责人与您联系并整改。",
        "感谢您的意见，我们已复核成果并在三个工作日内提交修改版。",
    ),
}
MIN_AMOUNT, MAX_AMOUNT = 20_000, 3_000_000  # yuan

# --- Website chat ----------------------------------------------------------------------------------------------

# The company's public website (the one /demo-site stands for), where the chat button sits.
WEBSITE = "https://www.ynsc-survey.cn"
WEBSITE_KEY = "ynsc-survey"
SITE_NAME = "云南山川勘测设计有限公司"
GENERAL_PAGES = (
    ("/", f"{SITE_NAME} · 工程测量 · 矿山勘查 · 规划设计"),
    ("/cases", f"项目案例_{SITE_NAME}"),
    ("/about", f"关于我们_{SITE_NAME}"),
    ("/contact", f"联系我们_{SITE_NAME}"),
)


@dataclass(frozen=True)
class ChatTopic:
    """What visitors ask about on the website chat, and how such a conversation usually goes."""

    # A customer whose needs mention one of these words asks about this.
    words: tuple[str, ...]
    # The service page the chat was opened on (path, title), and what was typed into Baidu to find it.
    page: tuple[str, str]
    searches: tuple[str, ...]
    # First questions of someone whose needs are not on record.
    questions: tuple[str, ...]
    # Staff, visitor, staff, … after the first question: a conversation is cut somewhere along it.
    exchange: tuple[str, ...]


CHAT_TOPICS = (
    ChatTopic(
        words=("地形", "航测", "三维", "控制测量", "带状", "测量服务", "勘测定界"),
        page=("/services/topographic-survey", f"地形测绘与工程测量_{SITE_NAME}"),
        searches=("昆明地形图测绘公司", "1:500地形图测绘收费标准", "无人机航测多少钱一平方公里"),
        questions=("你好，想问下1:500地形图测绘怎么收费？", "请问你们做无人机航测吗？大概多少钱一平方公里？"),
        exchange=(
            "地形图测绘一般按面积和比例尺计费，地形越复杂单价越高。请问测区大概多大、在哪个位置？",
            "大概{n}平方公里，在{city}，有一部分是山地。",
            "好的。山地部分需要无人机航测加外业补测，一般{m}周左右能出成果。方便发一下测区范围（KML或CAD红线）吗？我们核算后给您正式报价。",
            "可以，红线图我晚点发。你们有甲级测绘资质吧？",
            "有的，我们持有测绘甲级资质，资质证书扫描件可以和报价一起发给您。您留的手机号可以加微信吗？",
            "可以，就是这个号。",
            "好的，稍后加您微信，收到红线图后一个工作日内给您报价。",
            "好的，谢谢。",
            "不客气，有问题随时联系我们。",
        ),
    ),
    ChatTopic(
        words=("不动产", "面积", "确权", "宅基地", "界址", "预售", "竣工"),
        page=("/services/real-estate-survey", f"不动产测绘_{SITE_NAME}"),
        searches=("不动产测绘 昆明", "房屋面积测量去哪里办", "宅基地界址测量收费"),
        questions=("您好，办不动产证需要的房屋面积测量你们能做吗？", "请问宅基地界址测量需要准备什么材料？"),
        exchange=(
            "可以做的。需要提供身份证或营业执照、土地权属材料和规划或建设手续，手续不全的也可以先到现场测量。请问房屋在哪个区县？",
            "在{city}，一共{m}层。",
            "好的，一般按建筑面积收费，报价我们核算后发给您。外业两三天内可以安排上门。",
            "出报告要多久？能直接拿去不动产登记中心用吗？",
            "外业测完后3到5个工作日出成果，符合登记中心的要求，可以直接用于办证。",
            "好的，那帮我约个时间吧。",
            "好的，请问本周哪天方便？外业同事会提前电话联系您。",
            "周四上午可以。",
            "收到，已登记周四上午，出发前同事会先给您打电话。",
        ),
    ),
    ChatTopic(
        words=("地质灾害", "地灾", "隐患点"),
        page=("/services/geohazard-assessment", f"地质灾害危险性评估_{SITE_NAME}"),
        searches=("地质灾害危险性评估 资质", "云南地灾评估单位", "地灾评估报告多少钱"),
        questions=("您好，我们项目报建需要做地质灾害危险性评估，你们能做吗？", "请问地灾评估一般要多长时间？"),
        exchange=(
            "可以做的，我们有地质灾害评估和治理工程勘查设计资质。请问是什么类型的项目、用地面积大概多少？",
            "用地大概{n}公顷，在{city}。",
            "了解。先要确定评估级别，二级评估从现场调查到提交报告大约{m}周，一级评估还要组织专家评审，时间会长一些。",
            "费用大概多少？我们要先报预算。",
            "要看评估区范围和地质条件，一般在几万到十几万元之间。把项目位置和红线范围发给我们，一两天内给您详细报价。",
            "评审你们负责对接吗？",
            "评审由我们组织和对接，专家意见也由我们修改回复，直到通过为止。",
            "那挺好，我把资料整理一下发给你。",
            "好的，资料可以发到 service@shanchuan.example，或者加我微信也可以。",
        ),
    ),
    ChatTopic(
        words=("矿", "储量", "复垦", "尾矿"),
        page=("/services/mine-survey", f"矿山勘查与储量核实_{SITE_NAME}"),
        searches=("矿山储量年报编制", "储量核实报告 云南", "矿山复垦方案编制单位"),
        questions=("您好，我们矿山要做储量年报，你们能做吗？", "请问矿山地质环境保护与土地复垦方案你们编制吗？"),
        exchange=(
            "可以做的，我们每年做几十个矿山的储量年报和动态监测。请问是什么矿种、露天还是地下开采？",
            "建筑石料用灰岩，露天开采。",
            "好的，露天矿要测量采场现状并计算动用量，外业一般两三天。采矿许可证什么时候到期？",
            "明年到期，还要做延续。",
            "延续要的开发利用方案和复垦方案我们也可以一起做，合在一起报价会更优惠。",
            "那一起报个价吧。",
            "好的，麻烦提供采矿许可证和上一年度的年报，我们核算后发您报价。",
            "好，我让技术员整理一下。",
            "好的，有问题随时联系。",
        ),
    ),
    ChatTopic(
        words=("规划", "设计", "移民安置"),
        page=("/services/planning-design", f"国土空间规划与工程设计_{SITE_NAME}"),
        searches=("国土空间规划编制单位", "村庄规划编制费用", "场地平整土石方设计"),
        questions=("您好，想咨询一下村庄规划编制。", "你们做场地平整和土石方设计吗？"),
        exchange=(
            "我们做国土空间规划、村庄规划和场地竖向设计。方便说一下项目的位置和规模吗？",
            "在{city}，规划范围大概{n}公顷。",
            "好的。这个规模从现状调研到方案成果大概需要{m}个月，中间要和自然资源部门对接几次。",
            "我们想年底前完成报批，来得及吗？",
            "时间比较紧，可以加派人手先做现状调研和底图，需要贵单位提供现有规划资料和地形图。",
            "资料有一部分。能先出一个报价和工作计划吗？",
            "可以，这周内出初步的工作方案和报价，请问发到哪里？",
            "发我微信吧，就是留的手机号。",
            "好的，加您微信后发过去。",
        ),
    ),
    ChatTopic(
        words=("勘察", "地基", "钻孔", "基坑", "监测", "鉴定", "管线"),
        page=("/services/geotechnical-investigation", f"岩土工程勘察_{SITE_NAME}"),
        searches=("岩土工程勘察 昆明", "地基勘察费用", "基坑监测单位"),
        questions=("您好，我们新建厂房需要做岩土工程勘察，怎么收费？", "请问自建房地基勘察你们做吗？"),
        exchange=(
            "可以做。岩土勘察主要按钻孔数量和深度计费，需要先看建筑总平面图和设计要求。",
            "图纸有的，大概要打多少个孔？",
            "要根据建筑物布置确定，您这个规模大概{n}个孔，设计院出布孔图后就能确定。",
            "现场要几天？",
            "钻探一般{m}天左右，出报告再要一周，报告可以直接用于施工图审查。",
            "行，你们先出个方案和报价。",
            "好的，麻烦把总平面图发给我们，收到后两个工作日内给您方案和报价。",
            "好的，我让设计院发过来。",
            "收到，谢谢您的信任。",
        ),
    ),
    ChatTopic(
        words=("资质", "招标", "中介超市"),
        page=("/about/qualifications", f"资质荣誉_{SITE_NAME}"),
        searches=("云南测绘甲级资质单位", "山川勘测设计 资质"),
        questions=("请问你们公司有测绘甲级资质吗？", "你好，我们招标要求工程勘察资质，你们有吗？"),
        exchange=(
            "我们持有测绘甲级资质、工程勘察专业类岩土工程乙级资质，还有地质灾害评估和治理工程资质。",
            "你们入驻网上中介超市了吗？",
            "已经入驻云南省网上中介服务超市，可以直接选取。",
            "好的，能发一份资质证书和业绩清单吗？投标要用。",
            "可以，我们把盖章的资质证书复印件和近三年业绩发给您，发邮箱还是微信？",
            "发邮箱吧，就是我留的那个。",
            "好的，半小时内发出，收到后麻烦回复确认一下。",
            "好的，谢谢。",
            "不客气，祝投标顺利！",
        ),
    ),
    ChatTopic(
        words=("尽快", "加急", "月前完成"),
        page=("/contact", f"联系我们_{SITE_NAME}"),
        searches=("昆明测绘公司 加急", "测绘公司电话 昆明"),
        questions=("你好，我们项目比较急，测绘最快多久能出成果？", "请问你们最近能排上外业吗？"),
        exchange=(
            "请问是什么类型的项目、范围多大？我们根据工作量给您排期。",
            "大概{n}平方公里的地形测量，月底前要成果。",
            "这个工作量外业大概{m}天，内业同步进行，月底前交付问题不大，加急会有一定费用。",
            "加急费大概多少？",
            "一般在正常报价基础上加15%左右，具体看投入的人员和设备。",
            "可以接受，那你们先报个价。",
            "好的，今天下午把报价单发给您，确认后明天就可以安排进场。",
            "好的。",
            "感谢信任，有进展随时同步给您。",
        ),
    ),
)
# The visitor's first question when it is the need we have on record (a chat prospect's needs are its question).
NEED_QUESTIONS = (
    "您好，咨询一下：{needs}。",
    "你好，想了解一下：{needs}，你们能做吗？",
    "您好，我们有个项目：{needs}，想问下费用和工期。",
)
# Customers who come back through the website: a short errand, start to finish. Prospects chase a quote or a
# plan; members also bring new projects, and results, contracts and invoices to see to.
PROSPECT_ERRANDS = (
    (
        "你好，上次说的报价做好了吗？",
        "报价已经做好了，刚发到您微信，请查收。",
        "收到了，价格能再优惠一点吗？",
        "我跟领导申请一下，看能不能再优惠一些，稍后回复您。",
        "好的，等你消息。",
    ),
    (
        "你好，前几天电话里说的技术方案发了吗？",
        "方案今天上午已经发到您邮箱了，请查收。",
        "收到了，我们内部讨论一下，有问题再找你。",
        "好的，有问题随时联系。",
    ),
)
MEMBER_ERRANDS = (
    *PROSPECT_ERRANDS,
    (
        "您好，我们之前合作过，这次又有一个新项目想咨询。",
        "感谢您一直以来的信任！请问这次是什么项目？",
        "还是测绘，大概{n}平方公里，在{city}。",
        "好的，我让原来的项目负责人和您对接，今天内联系您。",
        "好的，谢谢。",
        "不客气。",
    ),
    (
        "请问上次提交的成果什么时候能修改好？",
        "修改意见已经收到，技术人员正在处理，预计{m}个工作日内提交。",
        "能再快一点吗？我们下周要报审。",
        "好的，我们加班处理，争取本周五前发给您。",
        "谢谢。",
    ),
    (
        "你好，合同已经盖章寄出了，麻烦查收一下。",
        "好的，收到后我们马上盖章回寄一份。请问快递单号是多少？",
        "顺丰，单号稍后发你微信。",
        "好的，收到后通知您。",
    ),
    (
        "发票开好了吗？我们这边要走报销流程。",
        "发票已经开好，今天下午寄出，电子版先发您邮箱。",
        "好的，谢谢。",
        "不客气，有问题随时联系。",
    ),
)
GREETINGS = ("您好，我是客服{staff}。", "您好！", "您好，我是{staff}，很高兴为您服务。", "您好，感谢咨询！")
# What a visitor writes while nobody has answered yet, or again after the last answer.
STILL_WAITING = ("在吗？", "请问有人在吗？", "方便的话加我微信详聊。", "麻烦尽快回复一下，谢谢。")
AGAIN = (
    "好的，另外想再确认一下工期。",
    "收到，那现场踏勘安排在哪天？",
    "还有个问题，成果需要几套纸质版？",
    "麻烦再发一份盖章版的报价单。",
)
CHAT_COMMENTS: dict[int, tuple[str, ...]] = {
    5: ("回复很及时，解答很专业。", "客服很耐心，报价说得很清楚。", "很快就有人回复，体验很好。"),
    4: ("回答比较详细，就是等了一会儿。", "整体不错，希望报价能再快一点。"),
    3: ("回复有点慢。", "问题解答了一部分，还要再电话沟通。"),
    2: ("等了很久才有人回复。", "没说清楚收费标准。"),
    1: ("问了半天也没给明确答复。", "一直没人回复，只好打电话。"),
}
# Quick answers earn better ratings: weights for 5…1 stars by how long the first answer took.
CHAT_RATINGS = (
    (60.0, _Weighted([5, 4, 3, 2, 1], [58, 28, 9, 3, 2])),
    (240.0, _Weighted([5, 4, 3, 2, 1], [42, 34, 14, 6, 4])),
    (math.inf, _Weighted([5, 4, 3, 2, 1], [24, 34, 22, 12, 8])),
)
# Beside the website's own customers, some others come back through the website chat.
RETURNING_SHARE = 0.04
SECOND_CHAT_SHARE = 0.3
RATED_SHARE = 0.4
DESKTOP_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
    "Safari/537.36 Edg/122.0.0.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.198 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0.4606.71 "
    "Safari/537.36 Core/1.94.236.400 QQBrowser/12.4.5516.400",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
)
MOBILE_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.302 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/97.0.4692.98 Mobile Safari/537.36 T7/13.52 SP-engine/2.91.0 baiduboxapp/13.52.0.10 "
    "(Baidu; P1 13) NABar/1.0",
)
WECHAT_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2219A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1110017 MMWEBSDK/20231202 MMWEBID/2585 "
    "MicroMessenger/8.0.45.2521(0x28002D3D) WeChat/arm64 Weixin NetType/5G Language/zh_CN ABI/arm64",
)
# Address blocks of Yunnan's telecom, mobile and unicom networks; a few visitors come through a 10.x proxy.
IP_PREFIXES = ("112.112", "116.52", "116.53", "182.247", "222.172", "222.221", "183.224", "223.104", "39.128", "36.102")
REFERRERS = _Weighted(["baidu", "direct", "wechat", "so", "bing"], [45, 30, 12, 8, 5])
CONTACT_COUNTS = _Weighted([0, 1, 2, 3], [15, 35, 30, 20])
PROJECT_COUNTS = _Weighted([1, 2, 3, 4, 5], [35, 28, 18, 11, 8])
PROJECT_COUNTS_INDIVIDUAL = _Weighted([1, 2, 3], [75, 20, 5])
PROJECT_NOTES = ("", "", "", "合同已归档", "尾款待收", "已开具发票", "含两次免费修改", "分三期付款")

# --- Writing ---------------------------------------------------------------------------------------------------


class _BulkWriter:
    """Reserves ids and writes many rows at once on the connection of the current transaction."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.sqlite = is_sqlite()

    async def prepare(self) -> None:
        if self.sqlite:
            # A chunk dirties pages all over a dozen indexes; SQLite's 2 MB default cache would spill them early.
            await self.connection.execute("PRAGMA cache_size = -131072")

    async def reserve_ids(self, counts: dict[type[Table], int]) -> dict[type[Table], list[int]]:
        """`count` new ids for each table, ascending, in one round trip (each costs a thread hop on SQLite)."""
        names = {table: table._meta.tablename for table, count in counts.items() if count}
        ids: dict[type[Table], list[int]] = {table: [] for table in counts}
        if not names:
            return ids
        if self.sqlite:
            # Safe only because the transaction is IMMEDIATE: no one else can insert until we commit.
            tops = ", ".join(f'(SELECT COALESCE(MAX("id"), 0) FROM "{name}") AS "{name}"' for name in names.values())  # noqa: S608
            async with self.connection.execute(f"SELECT {tops}") as cursor:
                row = await cursor.fetchone()
            for table, name in names.items():
                ids[table] = list(range(row[name] + 1, row[name] + 1 + counts[table]))
            return ids
        rows = await self.connection.fetch(
            "SELECT wanted.name, nextval(pg_get_serial_sequence(wanted.name, 'id')) AS id"
            " FROM unnest($1::text[], $2::int[]) AS wanted(name, count), generate_series(1, wanted.count)",
            [f'"{name}"' for name in names.values()],
            [counts[table] for table in names],
        )
        by_name: dict[str, list[int]] = {f'"{name}"': ids[table] for table, name in names.items()}
        for row in rows:
            by_name[row["name"]].append(row["id"])
        for found in ids.values():
            found.sort()
        return ids

    async def insert(self, table: type[Table], records: list[dict[str, Any]]) -> None:
        """Write records that all have the same keys, which are column names; columns left out take their default."""
        if not records:
            return
        names = tuple(records[0])
        as_row = itemgetter(*names)
        rows = [as_row(record) for record in records]
        if self.sqlite:
            quoted = ", ".join(f'"{name}"' for name in names)
            placeholders = ", ".join("?" * len(names))
            sql = f'INSERT INTO "{table._meta.tablename}" ({quoted}) VALUES ({placeholders})'  # noqa: S608
            await self.connection.executemany(sql, rows)
        else:
            await self.connection.copy_records_to_table(table._meta.tablename, records=rows, columns=list(names))


# --- Generating ------------------------------------------------------------------------------------------------


@dataclass
class _Chat:
    """A website conversation, its messages oldest first, and the follow-up and feedback it became."""

    conversation: dict[str, Any]
    messages: list[dict[str, Any]]
    follow_up: dict[str, Any] | None = None
    feedback: dict[str, Any] | None = None


@dataclass
class _Plan:
    """One customer and everything that belongs to it, before ids are known."""

    customer: dict[str, Any]
    contacts: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    follow_ups: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    # A person rather than an organisation; the browser they chat from, and their conversations oldest first.
    individual: bool = False
    visitor: dict[str, Any] | None = None
    chats: list[_Chat] = field(default_factory=list)


@dataclass
class _Options:
    """The seeded option lists as ids, with how often each is picked."""

    industries: dict[str, int]
    channels: _Weighted[tuple[int, str]]
    budget_bands: list[int]
    methods: _Weighted[tuple[int, str]]

    @classmethod
    async def load(cls) -> _Options:
        rows = (
            await OptionItem.select(OptionItem.id, OptionItem.kind, OptionItem.label)
            .where(OptionItem.active.eq(True))
            .order_by(OptionItem.position)
            .order_by(OptionItem.id)
        )
        by_kind: dict[str, list[tuple[int, str]]] = {kind.value: [] for kind in OptionKind}
        for row in rows:
            by_kind[row["kind"]].append((row["id"], row["label"]))
        channels = by_kind[OptionKind.source_channel.value]
        methods = by_kind[OptionKind.followup_method.value]
        return cls(
            industries={label: option_id for option_id, label in by_kind[OptionKind.industry.value]},
            channels=_Weighted(channels, [CHANNELS.get(label, CHANNELS["其他"])[0] for _, label in channels]),
            budget_bands=[option_id for option_id, _ in by_kind[OptionKind.budget_band.value]],
            methods=_Weighted(methods, [METHOD_WEIGHTS.get(label, 3) for _, label in methods]),
        )


class _Filler(dict):
    """Numbers for templates, drawn only for the placeholders a template actually has."""

    def __init__(self, rng: random.Random, year: int, values: dict[str, str]) -> None:
        super().__init__(values)
        self.rng = rng
        self.year = year

    def __missing__(self, key: str) -> int:
        rng = self.rng
        if key == "year":
            return self.year - rng.randrange(0, 3)
        low, high = {"n": (2, 60), "m": (2, 12), "k": (5, 200)}[key]
        return rng.randrange(low, high)


@dataclass(frozen=True)
class _Staff:
    account_id: int
    name: str
    role: str


class _Generator:
    """Makes customers one by one from a seeded random source; knows nothing about the database."""

    def __init__(self, rng: random.Random, options: _Options, staff: list[_Staff], now: float, customers: int) -> None:
        self.rng = rng
        self.options = options
        self.staff = staff
        self.owners = _Weighted(staff, [1.0 if person.role == Role.supervisor else 3.0 for person in staff])
        self.supervisors = [person for person in staff if person.role == Role.supervisor] or staff
        self.now = now
        today = math.floor((now + SHANGHAI) / DAY) * DAY - SHANGHAI
        self.today_start = today
        self.year = time.gmtime(now + SHANGHAI).tm_year
        fake = Faker("zh_CN")
        fake.seed_instance(rng.getrandbits(64))
        # Faker is slow per call; a pool of a few thousand names repeats no more than real life does.
        pool = min(10_000, 100 + 3 * customers)
        self.people = [(name, "".join(lazy_pinyin(name))) for name in {fake.name() for _ in range(pool)}]
        self.people.sort()
        self.used_mobiles: set[str] = set()
        self.used_names: set[str] = set()
        self.spelled: dict[str, tuple[str, str]] = {}
        # name_key tries every place name as a prefix; people's names repeat, so remember the answers.
        self.keys: dict[str, str] = {}
        others = [province for province in PROVINCES if province != "云南省"]
        self.other_provinces = _Weighted(others, [PROVINCE_WEIGHTS.get(province, 1.0) for province in others])
        yunnan = [city for city in PROVINCES["云南省"] if city != "昆明市"]
        self.yunnan_cities = _Weighted(yunnan, [YUNNAN_CITY_WEIGHTS.get(city, 1.0) for city in yunnan])
        # Website chat: the last chunk also holds the conversations going on right now.
        self.remaining = customers
        self.website = next((item for item in options.channels.items if item[1] == WEBSITE_CHANNEL), None)
        self.chat_method = next((item for item in options.methods.items if item[1] == CHAT_METHOD), None)
        # Some staff answer within seconds, some keep visitors waiting: each one's usual first answer, in seconds.
        self.answer_speed = {person.account_id: rng.uniform(25, 200) for person in staff}
        self.texts = _ChatTexts.load()

    # Small pieces ------------------------------------------------------------------------------------------

    def place(self) -> tuple[str, str]:
        rng = self.rng
        draw = rng.random()
        if draw < KUNMING_SHARE:
            return "云南省", "昆明市"
        if draw < KUNMING_SHARE + YUNNAN_SHARE:
            return "云南省", self.yunnan_cities.pick(rng)
        province = self.other_provinces.pick(rng)
        return province, rng.choice(PROVINCES[province])

    def person(self) -> tuple[str, str]:
        """A name and its pinyin."""
        return self.rng.choice(self.people)

    def mobile(self) -> str:
        while True:
            number = f"{self.rng.choice(MOBILE_PREFIXES)}{self.rng.randrange(100_000_000):08d}"
            if number not in self.used_mobiles:
                self.used_mobiles.add(number)
                return number

    def landline(self, city: str) -> str:
        code = AREA_CODES.get(city)
        if code is None:
            return ""
        first = "6" if city == "昆明市" else str(self.rng.choice("2345678"))
        return f"{code}-{first}{self.rng.randrange(10_000_000):07d}"

    def personal_email(self, pinyin: str) -> str:
        rng = self.rng
        if rng.random() < 0.35:
            return f"{rng.randrange(100_000, 3_000_000_000)}@qq.com"
        return f"{pinyin}{rng.randrange(1, 999) if rng.random() < 0.7 else ''}@{rng.choice(MAIL_DOMAINS)}"

    def wechat(self, pinyin: str, mobile: str) -> str:
        rng = self.rng
        draw = rng.random()
        if draw < 0.3 and mobile:
            return mobile
        if draw < 0.6:
            return "wxid_" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=14))
        return f"{pinyin}{rng.randrange(10, 9999)}"

    def address(self, city: str) -> str:
        rng = self.rng
        county = rng.choice(COUNTIES[city]) if city in COUNTIES else ""
        street = rng.choice(KUNMING_STREETS if city == "昆明市" else STREETS)
        return f"{city}{county}{street}{rng.randrange(1, 999)}号"

    def work_time(self, start: float, end: float) -> float:
        """A moment between start and end, usually on a weekday in office hours, Shanghai time."""
        rng = self.rng
        # Always three draws, whatever the calendar says, so a seed gives the same data on any day.
        moment, weekend_work, hour = rng.uniform(start, end), rng.random(), rng.uniform(8.5 * HOUR, 18.5 * HOUR)
        day = math.floor((moment + SHANGHAI) / DAY)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday.
        if weekday >= 5 and weekend_work >= 0.15:
            day -= weekday - 4
        candidate = day * DAY - SHANGHAI + hour
        return float(round(candidate if start <= candidate <= end else moment))

    def fill(self, template: str, **values: str) -> str:
        """The template with its {placeholders} filled: the given values, else a fitting random number."""
        if "{" not in template:
            return template
        return template.format_map(_Filler(self.rng, self.year, values))

    def organisation(self, segment: Segment, province: str, city: str) -> str:
        """A made-up organisation name, different from the ones made so far where the names allow it."""
        rng = self.rng
        for _ in range(3):
            template = rng.choice(segment.names)
            if "{county}" in template and city not in COUNTIES:
                template = "{city}自然资源和规划局"
            if "{province}" in template and not province.endswith(("省", "自治区")):
                template = "{city}住房和城乡建设局"
            name = template.format(
                city=city,
                c=short_name(city),
                county=rng.choice(COUNTIES.get(city, [city])),
                province=province,
                ps=short_name(province),
                w=self.trade_name(),
                form=LEGAL_FORMS.pick(rng),
            )
            if name not in self.used_names:
                break
        else:
            # Taken three times over: an office of it, or a branch of the company, is a customer of its own.
            branch = short_name(rng.choice(COUNTIES.get(city, [city])))
            name += rng.choice(DEPARTMENTS) if segment.public else f"{branch}分公司"
        self.used_names.add(name)
        return name

    def trade_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return rng.choice(TRADE_NAMES)
        first, second = rng.sample(TRADE_CHARACTERS, 2)
        return first + second

    def name_key(self, name: str) -> str:
        key = self.keys.get(name)
        if key is None:
            key = self.keys[name] = name_key(name)
        return key

    def organisation_email(self, segment: Segment, key: str) -> str:
        """Offices use a free mailbox named by their initials; companies often have their own domain."""
        spelled = self.spelled.get(key)
        if spelled is None:
            spelled = ("".join(lazy_pinyin(key, style=Style.FIRST_LETTER)), "".join(lazy_pinyin(key)))
            self.spelled[key] = spelled
        initials, domain = spelled
        if segment.public or self.rng.random() < 0.3:
            return f"{initials}@{self.rng.choice(MAIL_DOMAINS[:3])}"
        return f"{self.rng.choice(('office', 'info', 'hr', 'bgs', initials))}@{domain}.com"

    def band(self, centre: float) -> int | None:
        bands = self.options.budget_bands
        if not bands:
            return None
        top = max(len(bands) - 1, 1)
        weights = [math.exp(-(((index / top) - centre) ** 2) / 0.06) for index in range(len(bands))]
        return self.rng.choices(bands, weights)[0]

    def staff_member(self) -> _Staff | None:
        return self.owners.pick(self.rng) if self.staff else None

    # A customer --------------------------------------------------------------------------------------------

    def chunk(self, size: int, follow_ups_mean: float) -> list[_Plan]:
        self.remaining -= size
        if self.remaining > 0 or size == 0:
            return [self.customer(follow_ups_mean) for _ in range(size)]
        # The last chunk ends with visitors chatting right now, so the chat panel has someone to answer: new
        # prospects nobody has answered yet, and customers whose owner answered and who wrote again since.
        rng = self.rng
        newcomers = min(rng.randint(2, 3), size)
        plans = [self.customer(follow_ups_mean) for _ in range(size - newcomers)]
        arrivals = sorted(self.now - rng.uniform(3 * 60, HOUR) for _ in range(newcomers))
        plans += [self.customer(0.0, arrived=float(round(moment))) for moment in arrivals]
        # Customers quiet for a few hours at least, so the conversation going on is their latest.
        owned = [
            plan
            for plan in plans[: size - newcomers]
            if plan.customer["owner"] is not None
            and (
                plan.customer["last_contact_at"] is None or plan.customer["last_contact_at"] < _at(self.now - 3 * HOUR)
            )
        ]
        staff = {person.account_id: person for person in self.staff}
        for plan in rng.sample(owned, min(len(owned), rng.randint(1, 2))):
            self.open_chat(
                plan, staff[plan.customer["owner"]], float(round(self.now - rng.uniform(5 * 60, 1.5 * HOUR)))
            )
        return plans

    def customer(self, follow_ups_mean: float, arrived: float | None = None) -> _Plan:
        """A customer with everything around it. `arrived`: a website visitor who became a prospect at that
        moment by opening the chat, and is chatting still."""
        rng = self.rng
        now = self.now
        province, city = self.place()
        # The chat names a new prospect after the person who typed their name into it.
        individual = arrived is not None or rng.random() < INDIVIDUAL_SHARE
        segment = INDIVIDUAL if individual else SEGMENTS.pick(rng)

        if arrived is None:
            channel_id, channel = self.options.channels.pick(rng) if self.options.channels.items else (None, "")
        else:
            channel_id, channel = self.website or (None, WEBSITE_CHANNEL)
        _, member_share, external_share = CHANNELS.get(channel, CHANNELS["其他"])
        member = arrived is None and rng.random() < member_share
        external = arrived is None and rng.random() < external_share * (0.55 if member else 1.5)

        if arrived is None:
            created = now - 3 * YEAR * (1 - rng.random() ** 0.8)
            created = self.work_time(created, min(created + 2 * DAY, now))
        else:
            created = arrived
        converted = None
        if member:
            delay = rng.uniform(0, 7 * DAY) if channel == "老客户" else rng.uniform(3 * DAY, 240 * DAY)
            converted = self.work_time(created, min(created + delay, now))

        owner = None if arrived is not None or rng.random() < (0.05 if member else 0.28) else self.staff_member()
        if channel == WEBSITE_CHANNEL and (arrived is not None or rng.random() < 0.7):
            created_by = None  # The chat widget created it.
        elif external and self.supervisors and rng.random() < 0.6:
            created_by = rng.choice(self.supervisors).account_id  # Imported from a list.
        else:
            creator = owner or self.staff_member()
            created_by = creator.account_id if creator else None

        mobile = ""
        title = ""
        company = ""
        if individual:
            name, pinyin = self.person()
            key = self.name_key(name)
            mobile = self.mobile()
            if rng.random() < 0.55:
                employer = SEGMENTS.pick(rng)
                company = self.organisation(employer, province, city)
                title = rng.choice(employer.titles)
                if arrived is not None:
                    segment = employer  # They ask on their employer's behalf.
            email = self.personal_email(pinyin) if rng.random() < 0.45 else ""
            wechat = self.wechat(pinyin, mobile) if rng.random() < 0.6 else ""
            phone = self.landline(city) if rng.random() < 0.1 else ""
        else:
            name = self.organisation(segment, province, city)
            key = self.name_key(name)
            company = name if rng.random() < 0.3 else ""
            _, pinyin = self.person()
            if rng.random() < 0.7:
                mobile = self.mobile()
                title = rng.choice(segment.titles)
            email = self.organisation_email(segment, key) if rng.random() < 0.6 else ""
            wechat = self.wechat(pinyin, mobile) if rng.random() < 0.3 else ""
            phone = self.landline(city) if rng.random() < 0.65 else ""

        utm_source = utm_medium = utm_campaign = ""
        if channel in UTM_CHANNELS and rng.random() < 0.65:
            utm_source, utm_medium = rng.choice(UTM_SOURCES)
            when = time.gmtime(created + SHANGHAI)
            utm_campaign = f"{when.tm_year}{SEASONS[when.tm_mon - 1]}{rng.choice(CAMPAIGN_TOPICS)}推广"

        needs = self.fill(rng.choice(segment.needs)) + self.fill(rng.choice(NEED_TAILS))
        characteristics = "，".join(rng.sample(CHARACTERISTICS, rng.choice((0, 1, 1, 2, 2, 3))))
        habits = rng.choice(segment.habits) if rng.random() < 0.7 else ""

        plan = _Plan(
            individual=individual,
            customer={
                "name": name,
                "name_key": key,
                "kind": Kind.member.value if member else Kind.prospect.value,
                "origin": Origin.external.value if external else Origin.own.value,
                "company": company,
                "title": title,
                "mobile": mobile,
                "phone": phone,
                "email": email,
                "wechat": wechat.lower(),
                "province": province,
                "city": city,
                "address": self.address(city) if rng.random() < 0.85 else "",
                "industry": self.options.industries.get(segment.industry),
                "source_channel": channel_id,
                "utm_source": utm_source,
                "utm_medium": utm_medium,
                "utm_campaign": utm_campaign,
                "needs": needs,
                "characteristics": characteristics,
                "consumption_habits": habits,
                "budget_band": self.band(segment.budget + rng.uniform(-0.2, 0.2)),
                "value_tier": None,
                "tier_pinned": False,
                "owner": owner.account_id if owner else None,
                "converted_at": _at(converted),
                "created_by": created_by,
                "created_at": _at(created),
            },
        )
        if not individual:
            self.add_contacts(plan, segment, created)
        if converted is not None:
            self.add_projects(plan, segment, city, created, converted)
        mean = follow_ups_mean * (1.55 if member else 0.7)
        count = round(rng.gammavariate(2.0, mean / 2)) if mean > 0 else 0
        if channel == WEBSITE_CHANNEL and mean > 0:
            count = max(count, 1)  # The chat they came through is a follow-up of its own.
        chatted_first = channel == WEBSITE_CHANNEL and created_by is None
        last_contact = self.add_follow_ups(plan, count, created, owner, channel, chatted_first=chatted_first)
        if arrived is None and rng.random() < (0.18 if member else 0.056):
            self.add_feedback(plan, created, owner)
        if arrived is None:
            self.add_chats(plan, channel, owner)
        else:
            self.open_chat(plan, None, arrived)

        customer = plan.customer
        # As refresh_contact_dates counts them: follow-ups and signed projects.
        contacts = [row["happened_at"] for row in plan.follow_ups] + [
            project_contact_moment(project["signed_on"]) for project in plan.projects if project["signed_on"]
        ]
        customer["last_contact_at"] = max(contacts, default=None)
        customer["first_contact_at"] = min(contacts, default=None)
        customer["contact_count"] = len(contacts)
        customer["next_follow_up_at"] = plan.follow_ups[-1]["next_follow_up_at"] if plan.follow_ups else None
        customer["updated_at"] = _at(max(created, converted or created, last_contact or created))
        customer["revenue_fen"] = sum(
            project["amount_fen"] for project in plan.projects if project["status"] != ProjectStatus.cancelled
        )
        return plan

    def add_contacts(self, plan: _Plan, segment: Segment, created: float) -> None:
        rng = self.rng
        count = CONTACT_COUNTS.pick(rng)
        leaders = [title for title in segment.titles if title in LEADER_TITLES]
        for index in range(count):
            name, pinyin = self.person()
            mobile = self.mobile() if rng.random() < 0.9 else ""
            plan.contacts.append(
                {
                    "name": name,
                    # The first one decides: the person a salesman is eventually introduced to.
                    "title": rng.choice(leaders or segment.titles) if index == 0 else rng.choice(segment.titles),
                    "mobile": mobile,
                    "email": self.personal_email(pinyin) if rng.random() < 0.4 else "",
                    "wechat": self.wechat(pinyin, mobile).lower() if rng.random() < 0.5 else "",
                    "decision_maker": index == 0,
                    "created_at": _at(self.work_time(created, min(created + 60 * DAY, self.now))),
                }
            )

    def add_projects(self, plan: _Plan, segment: Segment, city: str, created: float, converted: float) -> None:
        rng = self.rng
        name = plan.customer["name"]
        short = plan.customer["name_key"]
        count = (PROJECT_COUNTS_INDIVIDUAL if segment is INDIVIDUAL else PROJECT_COUNTS).pick(rng)
        low, high = segment.amount
        # Some customers are simply bigger than others, on every project: that is what makes 80/20.
        size = rng.lognormvariate(0, 0.8)
        for index in range(count):
            signed = converted if index == 0 else self.work_time(converted, self.now)
            recent = self.now - signed < YEAR
            if index == count - 1 and index > 0 and rng.random() < 0.25:
                status, signed_on = ProjectStatus.negotiating, None
                opened = self.work_time(max(converted, self.now - 60 * DAY), self.now)
            else:
                status = rng.choices(
                    (ProjectStatus.completed, ProjectStatus.in_progress, ProjectStatus.cancelled),
                    (35, 58, 7) if recent else (85, 8, 7),
                )[0]
                signed_on = _local_date(signed)
                opened = float(round(max(signed - rng.uniform(0, 20 * DAY), created)))
            # Most projects are small and a few are large: the long tail the 80/20 analysis looks for.
            yuan = min(max(low * (high / low) ** (rng.random() ** 2.5) * size, MIN_AMOUNT), MAX_AMOUNT)
            yuan = round(yuan, -2 if yuan < 100_000 else -3)
            amount_fen = int(yuan) * 100
            template = rng.choice(segment.projects)
            plan.projects.append(
                {
                    "name": self.fill(
                        template,
                        c=short_name(city),
                        short=short,
                        name=name,
                        area=rng.choice(KUNMING_AREAS if city == "昆明市" else AREAS),
                        road=rng.choice(ROADS),
                        river=rng.choice(RIVERS),
                        phase=rng.choice(PHASES),
                    ),
                    "amount_fen": amount_fen,
                    "signed_on": signed_on,
                    "status": status.value,
                    "notes": rng.choice(PROJECT_NOTES),
                    "created_at": _at(opened),
                }
            )

    def add_follow_ups(
        self, plan: _Plan, count: int, created: float, owner: _Staff | None, channel: str, *, chatted_first: bool
    ) -> float | None:
        """The customer's follow-ups, oldest first, the last one holding the next plan; returns the last contact.
        `chatted_first`: the customer was made by the website chat, whose conversation is the first contact."""
        if count == 0 or not self.options.methods.items:
            return None
        rng = self.rng
        now = self.now
        # Some customers went quiet at some point; the rest are still being worked on today.
        active = rng.random() < 0.5
        until = now if active else rng.uniform(created, now)
        moments = sorted(self.work_time(created, until) for _ in range(count))
        if chatted_first:
            moments[0] = created
        methods = [self.options.methods.pick(rng) for _ in range(count)]
        if channel == WEBSITE_CHANNEL:
            methods[0] = self.chat_method or methods[0]
        contacts = plan.contacts
        customer_name = plan.customer["name"]
        for index, moment in enumerate(moments):
            author = owner if owner and rng.random() < 0.8 else self.staff_member()
            contact = rng.choice(contacts) if contacts and rng.random() < 0.7 else None
            method_id, method = methods[index]
            content = rng.choice(FOLLOW_UP_CONTENT.get(method, FOLLOW_UP_CONTENT["其他"]))
            who = contact["name"] + contact["title"] if contact else customer_name
            later = moments[index + 1] if index + 1 < count else None
            plan.follow_ups.append(
                {
                    "author": author.account_id if author else None,
                    "contact": contact,
                    "happened_at": _at(moment),
                    "method": method_id,
                    "content": self.fill(content, who=who),
                    "outcome": rng.choice(OUTCOMES),
                    # Earlier plans were kept by the follow-up that came next.
                    "next_follow_up_at": _at(later) if later is not None and rng.random() < 0.4 else None,
                    "conversation_id": None,
                    "created_at": _at(moment),
                }
            )
        last = moments[-1]
        plan.follow_ups[-1]["next_follow_up_at"] = _at(self.next_follow_up(last, active))
        return last

    def next_follow_up(self, last: float, active: bool) -> float | None:
        """Some overdue, some due today, most upcoming — relative to now, as a staff member's day looks."""
        rng = self.rng
        if rng.random() >= (0.7 if active else 0.25):
            return None
        draw = rng.random()
        if draw < 0.3 and last < self.now - 2 * DAY:
            return self.work_time(last + DAY, self.now - HOUR)
        if draw < 0.36 and last < self.today_start:
            return float(round(self.today_start + rng.uniform(9 * HOUR, 17.5 * HOUR)))
        return self.work_time(self.now + HOUR, self.now + 30 * DAY)

    def add_feedback(self, plan: _Plan, created: float, owner: _Staff | None) -> None:
        rng = self.rng
        rating = RATINGS.pick(rng)
        submitted = self.work_time(created, self.now)
        customer = plan.customer
        signature = plan.contacts[0]["name"] if plan.contacts else customer["name"]
        plan.feedback.append(
            {
                "visitor_name": signature,
                "visitor_contact": customer["mobile"] or customer["email"],
                "rating": rating,
                "content": rng.choice(FEEDBACK[rating]),
                **self.handling(rating, submitted, owner),
                "created_by": owner.account_id if owner and rng.random() < 0.3 else None,
                "conversation_id": None,
                "created_at": _at(submitted),
            }
        )

    def handling(self, rating: int, submitted: float, owner: _Staff | None) -> dict[str, Any]:
        """Most older feedback has been answered by its owner or a supervisor; recent feedback often not yet."""
        rng = self.rng
        handled = rng.random() < (0.8 if self.now - submitted > 7 * DAY else 0.3)
        handler = (owner if owner and rng.random() < 0.5 else rng.choice(self.supervisors)) if self.staff else None
        return {
            "status": FeedbackStatus.handled.value if handled else FeedbackStatus.new.value,
            "handled_by": handler.account_id if handled and handler else None,
            "handled_at": _at(min(round(submitted + rng.uniform(HOUR, 5 * DAY)), self.now)) if handled else None,
            "reply": rng.choice(REPLIES[rating >= 4]) if handled else "",
        }

    # Website chat -----------------------------------------------------------------------------------------

    def add_chats(self, plan: _Plan, channel: str, owner: _Staff | None) -> None:
        """Conversations behind some of the customer's follow-ups, each turned into the follow-up the chat writes
        when it closes: the first contact of a customer who came through the website (sometimes a later one
        too), and now and then a customer of another channel coming back through the website."""
        follow_ups = plan.follow_ups
        if not follow_ups or self.chat_method is None or not self.staff:
            return
        rng = self.rng
        if channel == WEBSITE_CHANNEL:
            chosen = [0]
            if len(follow_ups) > 1 and rng.random() < SECOND_CHAT_SHARE:
                chosen.append(rng.randrange(1, len(follow_ups)))
        elif rng.random() < RETURNING_SHARE:
            chosen = [rng.randrange(len(follow_ups))]
        else:
            return
        for index in chosen:
            self.closed_chat(plan, follow_ups[index], owner, asks_needs=channel == WEBSITE_CHANNEL and index == 0)

    def closed_chat(self, plan: _Plan, follow_up: dict[str, Any], owner: _Staff | None, *, asks_needs: bool) -> None:
        """A finished conversation at the moment of `follow_up`, which becomes its transcript (or the message left),
        as app.chat.service writes them; rated now and then."""
        rng = self.rng
        start = follow_up["happened_at"].timestamp()
        staff = owner if owner and rng.random() < 0.85 else self.staff_member()
        assert staff is not None  # add_chats makes none without staff
        visitor = self.visitor(plan, start)
        # In the evening and at weekends there is mostly nobody to answer: the visitor leaves a message.
        left = rng.random() < (0.06 if _office_hours(start) else 0.75)
        topic, script = self.script(plan, start, asks_needs=asks_needs)
        lines = self.say(plan, script, 1 if left else rng.randint(3, len(script)), staff)
        delay = self.first_answer(staff)
        # Seconds before each message after the first: the first answer, then typing on both sides.
        gaps = [delay if index == 1 else self.typing(index) for index in range(1, len(lines))]
        by_staff = rng.random() < 0.7
        if not left:
            gaps.append(rng.uniform(30, 600) if by_staff else rng.uniform(10, 120))
        times = self.timeline(start, gaps, self.now)
        messages = [self.message(author, staff, body, at) for (author, body), at in zip(lines, times, strict=False)]
        closed_by = "visitor" if left or not by_staff else "staff"
        code = CLOSED_BY_STAFF if by_staff else CLOSED_BY_VISITOR
        if not left:
            messages.append(self.message(Author.system, None, code, times[-1]))
        closed = times[-1]
        conversation = self.conversation(plan, topic, asks_needs, Status.closed, staff, messages, start)
        conversation.update(
            left_message=left,
            closed_at=_at(closed),
            closed_by=closed_by,
            first_response_at=None if left else messages[1]["created_at"],
        )
        if left:
            content = self.texts.left_message.replace("{name}", visitor["name"]) + "\n" + lines[0][1]
            follow_up["next_follow_up_at"] = due_moment(_local_date(start))
        else:
            content = self.transcript(visitor["name"], staff.name, lines, times, code)
        follow_up.update(author=staff.account_id, contact=None, method=self.chat_method[0], content=content, outcome="")
        follow_up["created_at"] = _at(closed)
        chat = _Chat(conversation=conversation, messages=messages, follow_up=follow_up)
        if not left and rng.random() < RATED_SHARE:
            chat.feedback = self.rating(plan, visitor, conversation, delay, closed, owner)
        plan.chats.append(chat)

    def open_chat(self, plan: _Plan, staff: _Staff | None, start: float) -> None:
        """A conversation going on now, its newest visitor messages unread. Without `staff` nobody has answered
        yet and it waits unassigned; else `staff` answered and the visitor wrote again since."""
        rng = self.rng
        self.visitor(plan, start)
        if staff is None:
            topic, script = self.script(plan, start, asks_needs=True)
            lines = self.say(plan, script, 1, None)
            plan.customer["needs"] = lines[0][1]  # a chat prospect's needs are its first question
            lines += [(Author.visitor, text) for text in rng.sample(STILL_WAITING, rng.randint(0, 2))]
            gaps = [rng.uniform(30, 300) for _ in lines[1:]]
        else:
            topic, script = self.script(plan, start, asks_needs=False)
            lines = self.say(plan, script, rng.choice((2, 4)), staff)
            lines += [(Author.visitor, text) for text in rng.sample(AGAIN, rng.randint(1, 2))]
            gaps = [self.first_answer(staff), *(self.typing(index) for index in range(2, len(lines)))]
        times = self.timeline(start, gaps, self.now - 20)
        messages = [self.message(author, staff, body, at) for (author, body), at in zip(lines, times, strict=True)]
        conversation = self.conversation(plan, topic, staff is None, Status.open, staff, messages, start)
        # The visitor's messages since the last answer are unread; the visitor has waited since the first of them.
        waiting = max((index for index, (author, _) in enumerate(lines) if author != Author.visitor), default=-1) + 1
        conversation.update(
            unread=len(lines) - waiting,
            waiting_since=_at(times[waiting]),
            first_response_at=messages[1]["created_at"] if staff else None,
        )
        plan.chats.append(_Chat(conversation=conversation, messages=messages))

    def visitor(self, plan: _Plan, since: float) -> dict[str, Any]:
        """The browser the customer chats from, made at their first conversation: the name and ways of reaching
        them that were typed into the chat, so the chat recognises the customer again."""
        if plan.visitor is not None:
            return plan.visitor
        customer = plan.customer
        contact = plan.contacts[0] if plan.contacts else None
        name = customer["name"] if plan.individual else contact["name"] if contact else self.person()[0]
        # A contact's mobile finds the customer again, as the chat's duplicate check does; their email would not.
        reach = contact if contact and contact["mobile"] else customer
        if not (reach["mobile"] or reach["email"] or reach["wechat"]):
            customer["mobile"] = self.mobile()  # The chat asks for a way to reach them.
        plan.visitor = {
            # A token as the widget makes one; not from the seed, so the same seed run again makes new visitors.
            "token_hash": token_hash(secrets.token_urlsafe(32)),
            "name": name,
            "mobile": reach["mobile"],
            "email": reach["email"],
            "wechat": reach["wechat"],
            "created_at": _at(since),
        }
        return plan.visitor

    def script(self, plan: _Plan, start: float, *, asks_needs: bool) -> tuple[ChatTopic | None, tuple[str, ...]]:
        """What the conversation is about: the customer's recorded need, a service (the one they need, or
        another), or a returning customer's errand."""
        rng = self.rng
        customer = plan.customer
        needs = customer["needs"]
        matching = next((topic for topic in CHAT_TOPICS if any(word in needs for word in topic.words)), None)
        if asks_needs:
            topic = matching or rng.choice(CHAT_TOPICS)
            return topic, (rng.choice(NEED_QUESTIONS).replace("{needs}", needs), *topic.exchange)
        if rng.random() < 0.4:
            topic = matching if matching and rng.random() < 0.5 else rng.choice(CHAT_TOPICS)
            return topic, (rng.choice(topic.questions), *topic.exchange)
        converted = customer["converted_at"]
        member = converted is not None and converted.timestamp() <= start
        return None, rng.choice(MEMBER_ERRANDS if member else PROSPECT_ERRANDS)

    def say(self, plan: _Plan, script: tuple[str, ...], count: int, staff: _Staff | None) -> list[tuple[Author, str]]:
        """The first `count` lines of the script, the visitor's and staff's in turn, their blanks filled in."""
        city = short_name(plan.customer["city"])
        lines = []
        for index, text in enumerate(script[:count]):
            if index % 2 == 0:
                lines.append((Author.visitor, self.fill(text, city=city)))
                continue
            if index == 1 and staff is not None:
                text = self.rng.choice(GREETINGS).replace("{staff}", staff.name) + text
            lines.append((Author.staff, self.fill(text, city=city)))
        return lines

    def first_answer(self, staff: _Staff) -> float:
        """Seconds until the first answer: 10 s to 10 min, around the staff member's usual pace."""
        usual = self.answer_speed.get(staff.account_id, 60.0)
        return min(max(self.rng.lognormvariate(math.log(usual), 0.7), 10.0), 600.0)

    def typing(self, index: int) -> float:
        """Seconds before a later message: staff answer (odd lines) a little faster than visitors write."""
        return self.rng.uniform(15, 120) if index % 2 else self.rng.uniform(20, 180)

    @staticmethod
    def timeline(start: float, gaps: list[float], latest: float) -> list[float]:
        """Whole-second moments from `start`, `gaps` apart, squeezed together to end by `latest`."""
        total = sum(gaps)
        scale = min(1.0, max(latest - start, 0.0) / total) if total else 1.0
        times = [start]
        for gap in gaps:
            times.append(times[-1] + gap * scale)
        return [float(round(moment)) for moment in times]

    @staticmethod
    def message(author: Author, staff: _Staff | None, body: str, at: float) -> dict[str, Any]:
        return {
            "author": author.value,
            "staff": staff.account_id if staff is not None and author == Author.staff else None,
            "body": body,
            "created_at": _at(at),
        }

    def conversation(
        self,
        plan: _Plan,
        topic: ChatTopic | None,
        first_touch: bool,
        status: Status,
        staff: _Staff | None,
        messages: list[dict[str, Any]],
        start: float,
    ) -> dict[str, Any]:
        """The conversation row as a chat that is still open leaves it; closing fills in the rest."""
        return {
            "status": status.value,
            "assignee": staff.account_id if staff else None,
            "left_message": False,
            **self.visit(plan.customer, topic, first_touch),
            "last_message_at": messages[-1]["created_at"],
            "unread": 0,
            "waiting_since": None,
            "first_response_at": None,
            "started_at": _at(start),
            "closed_at": None,
            "closed_by": "",
            "rating": None,
            "feedback_id": None,
            "followup_id": None,
        }

    def visit(self, customer: dict[str, Any], topic: ChatTopic | None, first_touch: bool) -> dict[str, str]:
        """Where the chat was opened: a page of the company website, how the visitor got there (the campaign of
        a customer's first touch), and their browser."""
        rng = self.rng
        path, title = topic.page if topic and rng.random() < 0.75 else rng.choice(GENERAL_PAGES)
        page_url = WEBSITE + path
        utm = {"utm_source": "", "utm_medium": "", "utm_campaign": ""}
        if first_touch and customer["utm_source"]:
            utm = {name: customer[name] for name in utm}
            page_url += "?" + "&".join(f"{name}={_quoted(value)}" for name, value in utm.items())
            source = utm["utm_source"]
        else:
            source = REFERRERS.pick(rng)
        mobile = rng.random() < 0.45
        search = _quoted(rng.choice(topic.searches if topic else ("云南山川勘测设计", "昆明测绘公司")))
        if source == "baidu":
            referrer = f"https://m.baidu.com/s?word={search}" if mobile else f"https://www.baidu.com/s?wd={search}"
        elif source in ("so", "bing"):
            referrer = (
                f"https://www.so.com/s?q={search}" if source == "so" else f"https://cn.bing.com/search?q={search}"
            )
        elif source == "wechat":
            referrer = "https://mp.weixin.qq.com/"  # WeChat's browser sends no more than that
        elif source in ("zhihu", "toutiao"):
            referrer = f"https://www.{source}.com/"
        else:
            referrer = ""
        if source == "wechat":
            agent = rng.choice(WECHAT_AGENTS)
        else:
            agent = rng.choice(MOBILE_AGENTS if mobile else DESKTOP_AGENTS)
        if rng.random() < 0.08:
            ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        else:
            ip = f"{rng.choice(IP_PREFIXES)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        return {
            "site": WEBSITE_KEY,
            "page_url": page_url,
            "page_title": title,
            "referrer": referrer,
            **utm,
            "language": "zh-CN",
            "user_agent": agent,
            "ip": ip,
        }

    def transcript(
        self, visitor: str, staff: str, lines: list[tuple[Author, str]], times: list[float], closing: str
    ) -> str:
        """The follow-up a closed chat becomes, laid out as app.chat.service.transcript writes it."""
        rows = [self.texts.transcript]
        for (author, body), at in zip(lines, times, strict=False):
            rows.append(f"[{_clock(at)}] {visitor if author == Author.visitor else staff}：{body}")
        rows.append(f"[{_clock(times[-1])}] {self.texts.system[closing]}")
        return "\n".join(rows)

    def rating(
        self,
        plan: _Plan,
        visitor: dict[str, Any],
        conversation: dict[str, Any],
        delay: float,
        closed: float,
        owner: _Staff | None,
    ) -> dict[str, Any]:
        """The visitor rates the conversation a little after it closed: a feedback record, as the chat keeps it."""
        rng = self.rng
        stars = next(weights for slowest, weights in CHAT_RATINGS if delay < slowest).pick(rng)
        submitted = float(round(min(closed + rng.uniform(5, 90), self.now)))
        comment = rng.choice(CHAT_COMMENTS[stars]) if rng.random() < 0.55 else self.texts.no_comment
        conversation["rating"] = stars
        feedback = {
            "visitor_name": visitor["name"],
            "visitor_contact": " / ".join(
                value for value in (visitor["mobile"], visitor["wechat"], visitor["email"]) if value
            ),
            "rating": stars,
            "content": comment,
            **self.handling(stars, submitted, owner),
            "created_by": None,
            "conversation_id": None,
            "created_at": _at(submitted),
        }
        plan.feedback.append(feedback)
        return feedback


@dataclass(frozen=True)
class _ChatTexts:
    """What the chat writes into follow-ups and feedback, in the language of whoever runs the demo (read once:
    chunks are made in a worker thread)."""

    transcript: str
    left_message: str
    no_comment: str
    system: dict[str, str]

    @classmethod
    def load(cls) -> _ChatTexts:
        return cls(
            transcript=gettext("Website chat transcript"),
            left_message=gettext("Message left on the website chat by %(name)s:", name="{name}"),
            no_comment=gettext("Rated the website chat without a comment."),
            system={code: system_text(code) for code in (CLOSED_BY_STAFF, CLOSED_BY_VISITOR)},
        )


def _office_hours(timestamp: float) -> bool:
    """Monday to Friday, 09:00 to 18:00 in Kunming."""
    here = timestamp + SHANGHAI
    weekday = (math.floor(here / DAY) + 3) % 7  # 1970-01-01 was a Thursday.
    return weekday < 5 and 9 * HOUR <= here % DAY < 18 * HOUR


def _clock(timestamp: float) -> str:
    """HH:MM in Kunming, as a transcript shows it."""
    return time.strftime("%H:%M", time.gmtime(timestamp + SHANGHAI))


def _at(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def _local_date(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp + SHANGHAI, UTC).date()


# --- Staff -----------------------------------------------------------------------------------------------------


async def _ensure_staff(console: Console | None) -> int:
    """Create the demo staff when there are fewer than four people to own customers; returns how many were made."""
    working = await Account.count().where(
        Account.role.is_in([Role.staff.value, Role.supervisor.value]), Account.user.active.eq(True)
    )
    if working >= len(DEMO_STAFF):
        return 0
    taken = {row["username"] for row in await BaseUser.select(BaseUser.username)}
    missing = [person for person in DEMO_STAFF if person[0] not in taken]
    if not missing:
        return 0
    # Benchmarks and screenshots set the password so they can log in as a demo staff member.
    password = os.environ.get("KEHU_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    # One hash for everyone: PBKDF2 is deliberately slow and these are throw-away demo accounts.
    hashed = await anyio.to_thread.run_sync(BaseUser.hash_password, password)
    async with transaction():
        for username, name, role in missing:
            # piccolo_user.email is unique, so each needs its own; example.com says plainly that it is made up.
            user = BaseUser(username=username, password=hashed, active=True, email=f"{username}@example.com")
            await user.save()
            await Account.insert(Account(user=user.id, name=name, role=role.value))
    if console is not None:
        console.print(f"演示账号密码: [bold]{password}[/bold]（所有演示账号共用，只显示这一次）")
        for username, name, role in missing:
            console.print(f"  {username}  {name}（{ROLE_NAMES[role]}）")
    return len(missing)


async def _working_staff() -> list[_Staff]:
    rows = (
        await Account.select(Account.id, Account.name, Account.role)
        .where(Account.role.is_in([Role.staff.value, Role.supervisor.value]), Account.user.active.eq(True))
        .order_by(Account.id)
    )
    return [_Staff(account_id=row["id"], name=row["name"], role=row["role"]) for row in rows]


# --- Putting it together ---------------------------------------------------------------------------------------


async def _write(plans: list[_Plan]) -> None:
    async with transaction() as txn:
        writer = _BulkWriter(txn.connection)
        await writer.prepare()
        chats = [chat for plan in plans for chat in plan.chats]
        visitors = [plan.visitor for plan in plans if plan.visitor is not None]
        ids = await writer.reserve_ids(
            {
                Customer: len(plans),
                Contact: sum(len(plan.contacts) for plan in plans),
                FollowUp: sum(len(plan.follow_ups) for plan in plans),
                Feedback: sum(len(plan.feedback) for plan in plans),
                ChatVisitor: len(visitors),
                Conversation: len(chats),
                ChatMessage: sum(len(chat.messages) for chat in chats),
            }
        )
        contact_ids, follow_up_ids, feedback_ids = iter(ids[Contact]), iter(ids[FollowUp]), iter(ids[Feedback])
        visitor_ids, conversation_ids, message_ids = (
            iter(ids[ChatVisitor]),
            iter(ids[Conversation]),
            iter(ids[ChatMessage]),
        )
        for customer_id, plan in zip(ids[Customer], plans, strict=True):
            plan.customer["id"] = customer_id
            for contact in plan.contacts:
                contact["id"] = next(contact_ids)
                contact["customer"] = customer_id
            for rows in (plan.projects, plan.follow_ups, plan.feedback):
                for row in rows:
                    row["customer"] = customer_id
            for follow_up in plan.follow_ups:
                follow_up["id"] = next(follow_up_ids)
                if follow_up["contact"] is not None:
                    follow_up["contact"] = follow_up["contact"]["id"]
            for feedback in plan.feedback:
                feedback["id"] = next(feedback_ids)
            if plan.visitor is not None:
                _number_chats(plan, customer_id, next(visitor_ids), conversation_ids, message_ids)
        await writer.insert(Customer, [plan.customer for plan in plans])
        await writer.insert(Contact, [row for plan in plans for row in plan.contacts])
        await writer.insert(Project, [row for plan in plans for row in plan.projects])
        await writer.insert(ChatVisitor, visitors)
        await writer.insert(Conversation, [chat.conversation for chat in chats])
        await writer.insert(ChatMessage, [message for chat in chats for message in chat.messages])
        await writer.insert(FollowUp, [row for plan in plans for row in plan.follow_ups])
        await writer.insert(Feedback, [row for plan in plans for row in plan.feedback])


def _number_chats(
    plan: _Plan, customer_id: int, visitor_id: int, conversation_ids: Iterator[int], message_ids: Iterator[int]
) -> None:
    """Link a customer's visitor, conversations, messages, follow-ups and feedback by their reserved ids."""
    visitor = plan.visitor
    assert visitor is not None
    visitor["id"] = visitor_id
    visitor["customer"] = customer_id
    for chat in plan.chats:
        conversation = chat.conversation
        conversation_id = conversation["id"] = next(conversation_ids)
        conversation["visitor"] = visitor_id
        conversation["customer"] = customer_id
        # Ids in the order the messages were written: the polls' after-id cursors rely on it.
        for message in chat.messages:
            message["id"] = next(message_ids)
            message["conversation"] = conversation_id
        conversation["last_message_id"] = chat.messages[-1]["id"]
        if chat.follow_up is not None:
            chat.follow_up["conversation_id"] = conversation_id
            conversation["followup_id"] = chat.follow_up["id"]
        if chat.feedback is not None:
            chat.feedback["conversation_id"] = conversation_id
            conversation["feedback_id"] = chat.feedback["id"]
    # The latest conversation is the one the widget shows and polls.
    visitor["conversation_id"] = plan.chats[-1].conversation["id"]


# Monthly ad spend of the paid channels, in yuan (low, high); a trade fair costs only in the months one is held.
AD_SPEND: dict[str, tuple[int, int]] = {"搜索引擎": (8_000, 30_000), "广告": (5_000, 40_000), "展会": (15_000, 60_000)}
FAIR_MONTHS = frozenset({3, 4, 5, 9, 10, 11})


async def _add_ad_spend(rng: random.Random, moment: float) -> int:
    """A year of ad spend per paid channel and month, up to the current month; months already entered stay."""
    channels = {
        row["label"]: row["id"]
        for row in await OptionItem.select(OptionItem.id, OptionItem.label).where(
            OptionItem.kind == OptionKind.source_channel.value, OptionItem.label.is_in(list(AD_SPEND))
        )
    }
    today = _local_date(moment)
    months = [date(today.year - (today.month - back <= 0), (today.month - back - 1) % 12 + 1, 1) for back in range(12)]
    added = 0
    async with transaction():
        for label, channel_id in channels.items():
            low, high = AD_SPEND[label]
            for month in months:
                if label == "展会" and month.month not in FAIR_MONTHS:
                    continue
                yuan = round(rng.uniform(low, high), -2)
                rows = await AdSpend.raw(
                    "INSERT INTO ad_spend (channel, month, amount_fen, updated_by, updated_at) "
                    "VALUES ({}, {}, {}, NULL, {}) ON CONFLICT (channel, month) DO NOTHING RETURNING id",
                    channel_id,
                    month,
                    int(yuan) * 100,
                    datetime.now(UTC),
                )
                added += len(rows)
    return added


async def generate(
    *,
    customers: int,
    followups_per_customer: float | None = None,
    seed: int | None = None,
    console: Console | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Add `customers` demo customers with everything around them; returns how many rows of each kind were made.

    Expects a migrated database with seeded option lists. Safe to run again: it adds more. Times are spread
    relative to `now` (default: the current time); the same seed and `now` give the same data.
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    mean = 6.0 if followups_per_customer is None else followups_per_customer
    if mean < 0:
        raise ValueError("followups_per_customer must not be negative")

    started = time.perf_counter()
    counts = {"accounts": await _ensure_staff(console)}
    moment = (now or datetime.now(UTC)).timestamp()
    generator = _Generator(
        random.Random(seed), await _Options.load(), await _working_staff(), float(int(moment)), customers
    )
    sizes = [min(CHUNK, customers - start) for start in range(0, customers, CHUNK)]
    totals = dict.fromkeys(
        ("customers", "contacts", "projects", "follow_ups", "feedback", "conversations", "chat_messages"), 0
    )

    progress = Progress(
        TextColumn("[bold]演示数据[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=console is None,
    )
    with progress:
        task = progress.add_task("customers", total=customers)
        plans = generator.chunk(sizes[0], mean) if sizes else []
        for index in range(len(sizes)):
            # The database writes one chunk while the next is being made up: two cores, half the wait.
            writing = asyncio.create_task(_write(plans))
            try:
                upcoming = (
                    await anyio.to_thread.run_sync(generator.chunk, sizes[index + 1], mean)
                    if index + 1 < len(sizes)
                    else []
                )
            finally:
                await writing
            for plan in plans:
                totals["customers"] += 1
                totals["contacts"] += len(plan.contacts)
                totals["projects"] += len(plan.projects)
                totals["follow_ups"] += len(plan.follow_ups)
                totals["feedback"] += len(plan.feedback)
                totals["conversations"] += len(plan.chats)
                totals["chat_messages"] += sum(len(chat.messages) for chat in plan.chats)
            progress.advance(task, len(plans))
            plans = upcoming
    ad_spend = await _add_ad_spend(generator.rng, moment)
    await db.analyze()
    # The one rule for tiers and RFM segments, as the worker applies it every night.
    await recompute_tiers(bulk_load=True)
    # Again: the tiers rewrote most customers with revenue, and PostgreSQL reads an index alone only where VACUUM
    # has marked the pages all-visible since.
    await db.analyze()

    counts.update(totals)
    if console is not None:
        summary = "，".join(f"{label} {counts[key]:,}" for key, label in _SUMMARY)
        console.print(f"已生成 {summary}，广告投入 {ad_spend} 条，用时 {time.perf_counter() - started:.1f} 秒")
    return counts


_SUMMARY = (
    ("customers", "客户"),
    ("contacts", "联系人"),
    ("projects", "合作项目"),
    ("follow_ups", "跟进记录"),
    ("feedback", "反馈"),
    ("conversations", "在线咨询"),
    ("chat_messages", "聊天消息"),
    ("accounts", "演示账号"),
)
